package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
)

// Envelope is the wire form of every record: one DAG-CBOR map with exactly
// these keys. The signature covers the canonical encoding of the map without
// the "sig" key, prefixed by the record signing domain (see [SigningInput]).
type Envelope struct {
	// Version is the envelope version, currently 1.
	Version int `cbor:"v"`
	// Network is the federation's network id: the CID of its genesis.
	Network Link `cbor:"net"`
	// Kind names the body schema, e.g. "statement".
	Kind string `cbor:"kind"`
	// Topic is the record topic: "index", "members" or "issue/<slug>".
	Topic string `cbor:"topic"`
	// Author is the 32-byte ed25519 public key of the signer.
	Author []byte `cbor:"author"`
	// Seq numbers the author's records on Topic, starting at 1.
	Seq uint64 `cbor:"seq"`
	// Prev links the author's record with Seq-1 on Topic; null when Seq is 1.
	Prev *Link `cbor:"prev"`
	// Deps links the records this one answers or relies on, plus the topic
	// heads the author had seen; sorted by CID bytes, without duplicates.
	Deps []Link `cbor:"deps"`
	// Time is the author's claimed time of signing, in unix milliseconds.
	Time int64 `cbor:"time"`
	// Body is the kind-specific body, a DAG-CBOR map.
	Body cbor.RawMessage `cbor:"body"`
	// Sig is the 64-byte ed25519 signature; absent in the signing input.
	Sig []byte `cbor:"sig,omitempty"`
}

// Record is a decoded, structurally valid record together with its bytes
// and CID. A Record returned by [Decode] has not had its signature checked;
// one returned by [Validate] or [Build] has.
type Record struct {
	// CID is the record's content id, computed from Raw.
	CID cid.Cid
	// Raw is the exact signed encoding.
	Raw []byte
	// Env is the decoded envelope.
	Env Envelope
	// Body is the decoded body, of the type the kind's spec creates.
	Body Body
}

// PrevCID returns the CID of the author's previous record, or cid.Undef.
func (r *Record) PrevCID() cid.Cid {
	if r.Env.Prev == nil {
		return cid.Undef
	}
	return r.Env.Prev.Cid
}

// DepCIDs returns the CIDs of the record's deps.
func (r *Record) DepCIDs() []cid.Cid {
	out := make([]cid.Cid, len(r.Env.Deps))
	for i, d := range r.Env.Deps {
		out[i] = d.Cid
	}
	return out
}

// Links returns prev (if any) followed by deps: the record's whole
// immediate causal past.
func (r *Record) Links() []cid.Cid {
	out := make([]cid.Cid, 0, len(r.Env.Deps)+1)
	if r.Env.Prev != nil {
		out = append(out, r.Env.Prev.Cid)
	}
	for _, d := range r.Env.Deps {
		out = append(out, d.Cid)
	}
	return out
}

// ClaimedTime returns the record's claimed time.
func (r *Record) ClaimedTime() time.Time { return time.UnixMilli(r.Env.Time) }

// recordDomain separates record signatures from any other use of the key
// (libp2p handshakes, genesis signatures), as go-libp2p's core/record does.
const recordDomain = "clearinghouse-record"

// SigningInput returns the bytes an author signs for env: the unsigned
// varint length of the domain string, the domain string, then the
// canonical DAG-CBOR encoding of env without its "sig" key.
func SigningInput(env *Envelope) ([]byte, error) {
	unsigned := *env
	unsigned.Sig = nil
	body, err := encMode.Marshal(&unsigned)
	if err != nil {
		return nil, Errorf(ReasonBadEncoding, "encode unsigned envelope: %v", err)
	}
	return domainPrefixed(recordDomain, body), nil
}

// signingInput returns SigningInput(&r.Env). For a record whose Raw is
// the canonical encoding of Env (every record from Decode), the unsigned
// encoding is Raw without its "sig" pair and with one pair fewer in the map
// head: the pairs keep their canonical order whether "sig" is there or not.
// The fourth pair is "sig" (keys sort "v", "net", "seq", "sig", ...); its
// offset follows from the lengths of the three before it. If the bytes
// found there are not exactly that pair, it re-encodes instead.
func (r *Record) signingInput() ([]byte, error) {
	if msg, ok := slicedSigningInput(r.Raw, &r.Env); ok {
		return msg, nil
	}
	return SigningInput(&r.Env)
}

// slicedSigningInput cuts the signing input of env out of raw, its
// encoding, and reports whether it could (see [Record.signingInput]).
func slicedSigningInput(raw []byte, env *Envelope) ([]byte, bool) {
	const (
		mapHead11 = 0xa0 | 11 // a map of the 11 envelope keys
		mapHead10 = 0xa0 | 10
	)
	if env.Version < 0 || len(env.Sig) != ed25519.SignatureSize || len(raw) == 0 || raw[0] != mapHead11 {
		return nil, false
	}
	netLen := 1 + env.Network.ByteLen() // 0x00 multibase prefix + CID
	off := 1 +                          // map head
		2 + headLen(uint64(env.Version)) + // "v"
		4 + 2 + headLen(uint64(netLen)) + netLen + // "net": tag 42 head, byte string
		4 + headLen(env.Seq) // "seq"
	sigKey := []byte{0x63, 's', 'i', 'g', 0x58, ed25519.SignatureSize}
	end := off + len(sigKey) + ed25519.SignatureSize
	if end > len(raw) || !bytes.Equal(raw[off:off+len(sigKey)], sigKey) || !bytes.Equal(raw[off+len(sigKey):end], env.Sig) {
		return nil, false
	}
	return domainPrefixed(recordDomain, []byte{mapHead10}, raw[1:off], raw[end:]), true
}

// headLen is the length of a CBOR head (major type and argument) whose
// argument is n, in the shortest form canonical encoding requires.
func headLen(n uint64) int {
	switch {
	case n < 24:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	default:
		return 9
	}
}

// domainPrefixed returns uvarint(len(domain)) || domain || the parts of
// the payload, in one allocation.
func domainPrefixed(domain string, payload ...[]byte) []byte {
	n := binary.MaxVarintLen64 + len(domain)
	for _, p := range payload {
		n += len(p)
	}
	out := make([]byte, 0, n)
	out = binary.AppendUvarint(out, uint64(len(domain)))
	out = append(out, domain...)
	for _, p := range payload {
		out = append(out, p...)
	}
	return out
}

// Decode parses raw as a record and checks everything that does not need
// the network id, a clock or the signature: size, strict canonical DAG-CBOR,
// version, kind, topic, links and body schema. It never panics, whatever raw
// holds.
func Decode(raw []byte) (*Record, error) {
	return decode(raw, cid.Undef)
}

// DecodeTrusted decodes raw, the bytes a node's own store returned for c,
// as Decode does but for two checks it skips: that raw is the canonical
// encoding (decoding it and re-encoding it gives the same bytes), and the
// hash of raw (its CID is c). It is only for bytes that (1) were checked
// by Validate before the store accepted them, which includes the
// canonical form, and (2) have just been read from that store, which
// re-hashes every block it returns and fails unless the bytes hash to c
// (store.Get). Both together mean raw is the same byte string that was
// found canonical, so the re-encoding check could only repeat its verdict.
// Every other check of Decode stays (strict decoding, version, kind,
// topic, links, body schema): a record that fails them fails here too,
// with the same reason. For any raw that Decode accepts, DecodeTrusted(raw,
// RecordCID(raw)) returns the same record (FuzzDecodeTrusted). c must be
// a record CID. Bytes from anywhere else (the network, an import, a file)
// go through Decode or Validate.
func DecodeTrusted(raw []byte, c cid.Cid) (*Record, error) {
	if !IsRecordCID(c) {
		return nil, Errorf(ReasonBadLinks, "trusted decode: %s is not a record CID", c)
	}
	return decode(raw, c)
}

// decode is Decode when trusted is cid.Undef, DecodeTrusted otherwise.
func decode(raw []byte, trusted cid.Cid) (*Record, error) {
	unmarshal := unmarshalCanonical
	if trusted.Defined() {
		unmarshal = unmarshalStrict
	}
	if len(raw) > MaxRecordSize {
		return nil, Errorf(ReasonOversize, "record is %d bytes, limit %d", len(raw), MaxRecordSize)
	}
	r := &Record{Raw: raw}
	if err := unmarshal(raw, &r.Env); err != nil {
		return nil, err
	}
	env := &r.Env
	if env.Version != Version {
		return nil, Errorf(ReasonBadVersion, "envelope version %d, this node speaks %d", env.Version, Version)
	}
	if len(env.Author) != ed25519.PublicKeySize {
		return nil, Errorf(ReasonBadEncoding, "author is %d bytes, want a %d-byte ed25519 key", len(env.Author), ed25519.PublicKeySize)
	}
	if len(env.Sig) != ed25519.SignatureSize {
		return nil, Errorf(ReasonBadEncoding, "sig is %d bytes, want %d", len(env.Sig), ed25519.SignatureSize)
	}
	if !env.Network.Defined() {
		return nil, Errorf(ReasonBadEncoding, "net is not a CID")
	}
	if len(env.Kind) > MaxKindLen {
		return nil, Errorf(ReasonUnknownKind, "kind longer than %d bytes", MaxKindLen)
	}
	spec, ok := kinds[env.Kind]
	if !ok {
		return nil, Errorf(ReasonUnknownKind, "unknown kind %q", env.Kind)
	}
	if err := ValidTopic(env.Topic); err != nil {
		return nil, err
	}
	if spec.Topics&ClassOf(env.Topic) == 0 {
		return nil, Errorf(ReasonWrongTopic, "kind %q may not appear on topic %q", env.Kind, env.Topic)
	}
	if err := checkLinks(env); err != nil {
		return nil, err
	}
	if len(env.Body) > MaxBodySize {
		return nil, Errorf(ReasonOversize, "body is %d bytes, limit %d", len(env.Body), MaxBodySize)
	}
	body := spec.New()
	if err := unmarshal(env.Body, body); err != nil {
		perr := err.(*Error)
		if perr.Reason == ReasonBadEncoding {
			perr.Reason = ReasonBadBody
		}
		return nil, perr
	}
	if err := body.Check(); err != nil {
		return nil, Errorf(ReasonBadBody, "%s: %v", env.Kind, err)
	}
	r.Body = body
	if trusted.Defined() {
		r.CID = trusted
	} else {
		r.CID = RecordCID(raw)
	}
	return r, nil
}

func checkLinks(env *Envelope) error {
	switch {
	case env.Seq == 0:
		return Errorf(ReasonBadLinks, "seq must start at 1")
	case env.Seq == 1 && env.Prev != nil:
		return Errorf(ReasonBadLinks, "seq 1 must not have a prev")
	case env.Seq > 1 && env.Prev == nil:
		return Errorf(ReasonBadLinks, "seq %d must have a prev", env.Seq)
	}
	if env.Prev != nil && !IsRecordCID(env.Prev.Cid) {
		return Errorf(ReasonBadLinks, "prev %s is not a record CID", env.Prev.Cid)
	}
	if len(env.Deps) > MaxDeps {
		return Errorf(ReasonBadLinks, "%d deps, limit %d", len(env.Deps), MaxDeps)
	}
	var last string
	for i, d := range env.Deps {
		if !IsRecordCID(d.Cid) {
			return Errorf(ReasonBadLinks, "deps[%d] %s is not a record CID", i, d.Cid)
		}
		b := d.KeyString()
		if i > 0 && last >= b {
			return Errorf(ReasonBadLinks, "deps must be sorted by CID bytes without duplicates (deps[%d])", i)
		}
		last = b
	}
	return nil
}

// Verify checks the record's signature against its author key.
func (r *Record) Verify() error {
	msg, err := r.signingInput()
	if err != nil {
		return err
	}
	if !verifySig(r.Env.Author, msg, r.Env.Sig) {
		return badSignature(r)
	}
	return nil
}

// Validate decodes raw and checks everything a receiver can check without
// its store: [Decode], then that the record belongs to network, that its
// claimed time is not beyond now+MaxClockSkew, and its signature. The order
// puts cheap checks before the signature check.
func Validate(raw []byte, network cid.Cid, now time.Time) (*Record, error) {
	r, err := validateUnsigned(raw, network, now)
	if err != nil {
		return nil, err
	}
	if err := r.Verify(); err != nil {
		return nil, err
	}
	return r, nil
}

// validateUnsigned is Validate but for the signature.
func validateUnsigned(raw []byte, network cid.Cid, now time.Time) (*Record, error) {
	r, err := Decode(raw)
	if err != nil {
		return nil, err
	}
	if !r.Env.Network.Equals(network) {
		return nil, Errorf(ReasonWrongNetwork, "record of network %s, this node is on %s", r.Env.Network.Cid, network)
	}
	if limit := now.Add(MaxClockSkew).UnixMilli(); r.Env.Time > limit {
		return nil, Errorf(ReasonFutureTime, "claimed time %s is %s ahead of this node's clock",
			r.ClaimedTime().UTC().Format(time.RFC3339), r.ClaimedTime().Sub(now).Round(time.Second))
	}
	return r, nil
}

// Draft is everything an author chooses about a new record. [Build] fills
// in the author, sorts and deduplicates the deps, signs and encodes it.
type Draft struct {
	Network cid.Cid
	Kind    string
	Topic   string
	Seq     uint64
	Prev    cid.Cid // cid.Undef for Seq 1
	Deps    []cid.Cid
	Time    time.Time
	Body    Body
}

// Build signs a draft with key and returns the record, checked exactly as a
// receiver would check it (except for the clock), so a node never publishes
// what its peers would reject.
func Build(key ed25519.PrivateKey, d Draft) (*Record, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("protocol: build: private key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	body, err := encMode.Marshal(d.Body)
	if err != nil {
		return nil, Errorf(ReasonBadBody, "encode body: %v", err)
	}
	env := Envelope{
		Version: Version,
		Network: Link{d.Network},
		Kind:    d.Kind,
		Topic:   d.Topic,
		Author:  key.Public().(ed25519.PublicKey),
		Seq:     d.Seq,
		Deps:    SortLinks(d.Deps),
		Time:    d.Time.UnixMilli(),
		Body:    body,
	}
	if d.Prev.Defined() {
		env.Prev = &Link{d.Prev}
	}
	msg, err := SigningInput(&env)
	if err != nil {
		return nil, err
	}
	env.Sig = ed25519.Sign(key, msg)
	raw, err := encMode.Marshal(&env)
	if err != nil {
		return nil, Errorf(ReasonBadEncoding, "encode record: %v", err)
	}
	r, err := Decode(raw)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// SortLinks returns the CIDs as links sorted by their bytes, without
// duplicates or undefined CIDs, which is the order deps must have.
func SortLinks(cids []cid.Cid) []Link {
	out := make([]Link, 0, len(cids))
	for _, c := range cids {
		if c.Defined() {
			out = append(out, Link{c})
		}
	}
	slices.SortFunc(out, func(a, b Link) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	return slices.CompactFunc(out, func(a, b Link) bool { return a.Equals(b.Cid) })
}
