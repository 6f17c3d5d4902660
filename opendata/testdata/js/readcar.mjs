// An independent reader of clearinghouse CAR archives, in JavaScript with
// the IPLD project's own libraries (no clearinghouse code): it reads a CAR
// (v1 or v2), decodes every block as DAG-CBOR, re-encodes it to check that
// the encoding is the canonical one, recomputes every CID (CIDv1,
// dag-cbor, sha2-256) and compares it with the CID the block is filed
// under. It prints one JSON object; opendata's TestIndependentReader runs
// it. Usage: node readcar.mjs FILE
import fs from 'node:fs'
import { CarBlockIterator } from '@ipld/car/iterator'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i])

const it = await CarBlockIterator.fromIterable(fs.createReadStream(process.argv[2]))
const out = { version: it.version, roots: (await it.getRoots()).map(String), cids: [], mismatches: [], kinds: {} }
for await (const { cid, bytes } of it) {
  const value = dagCbor.decode(bytes)
  const recomputed = CID.create(1, dagCbor.code, await sha256.digest(bytes))
  if (!recomputed.equals(cid)) {
    out.mismatches.push({ cid: cid.toString(), recomputed: recomputed.toString() })
  }
  if (!equal(dagCbor.encode(value), bytes)) {
    out.mismatches.push({ cid: cid.toString(), reason: 'non-canonical' })
  }
  out.cids.push(cid.toString())
  // The genesis has a name; a record has a kind and links its network.
  const kind = value.kind ?? (value.founders ? 'genesis' : 'unknown')
  out.kinds[kind] = (out.kinds[kind] ?? 0) + 1
  if (value.kind && !(value.net instanceof CID && value.net.toString() === out.roots[0])) {
    out.mismatches.push({ cid: cid.toString(), reason: 'net is not the first root' })
  }
}
console.log(JSON.stringify(out))
