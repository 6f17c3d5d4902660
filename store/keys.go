package store

import (
	"encoding/binary"

	"github.com/ipfs/go-cid"
)

// Key prefixes; the layout is documented in doc.go.
const (
	pSchema     byte = 0x00
	pBlock      byte = 0x01
	pMeta       byte = 0x02
	pArrival    byte = 0x03
	pTopic      byte = 0x04
	pKind       byte = 0x05
	pChain      byte = 0x06
	pHead       byte = 0x07
	pTopicStat  byte = 0x08
	pStats      byte = 0x09
	pPending    byte = 0x0a // | cid: a record waiting for its causal past (raw bytes)
	pFollow     byte = 0x0b // | slug: an issue followed at runtime (empty value)
	pBlockList  byte = 0x0c // | author key: a relaying key blocked at runtime (blocks.go)
	pFork       byte = 0x0d // | author | topic | 0x00 | seq | cid: a second record at a chain slot
	nameEnd     byte = 0x00 // terminates a topic or kind inside a key
	nameEndNext byte = 0x01 // nameEnd+1, the exclusive upper bound of a name's keys
)

var (
	schemaKey = []byte{pSchema}
	statsKey  = []byte{pStats}
)

func cidKey(prefix byte, c cid.Cid) []byte {
	k := make([]byte, 0, 1+c.ByteLen())
	k = append(k, prefix)
	return append(k, c.KeyString()...)
}

func blockKey(c cid.Cid) []byte { return cidKey(pBlock, c) }
func metaKey(c cid.Cid) []byte  { return cidKey(pMeta, c) }

func arrivalKey(arrival uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{pArrival}, arrival)
}

// namePrefix returns prefix | name | 0x00, the common prefix of all keys of
// one topic or kind.
func namePrefix(prefix byte, name string) []byte {
	k := make([]byte, 0, 1+len(name)+1+8)
	k = append(k, prefix)
	k = append(k, name...)
	return append(k, nameEnd)
}

// upperBound returns the exclusive upper bound of all keys starting with p,
// where p ends in nameEnd.
func upperBound(p []byte) []byte {
	u := append([]byte(nil), p...)
	u[len(u)-1] = nameEndNext
	return u
}

func topicKey(topic string, arrival uint64) []byte {
	return binary.BigEndian.AppendUint64(namePrefix(pTopic, topic), arrival)
}

func kindKey(kind string, arrival uint64) []byte {
	return binary.BigEndian.AppendUint64(namePrefix(pKind, kind), arrival)
}

// chainPrefix returns 0x06 | author | topic | 0x00.
func chainPrefix(author []byte, topic string) []byte {
	k := make([]byte, 0, 1+len(author)+len(topic)+1+8)
	k = append(k, pChain)
	k = append(k, author...)
	k = append(k, topic...)
	return append(k, nameEnd)
}

func chainKey(author []byte, topic string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(chainPrefix(author, topic), seq)
}

// forkKey returns the key of a record stored at a chain slot another
// record already holds (an equivocation): the chain key followed by the CID.
func forkKey(author []byte, topic string, seq uint64, c cid.Cid) []byte {
	k := chainKey(author, topic, seq)
	k[0] = pFork
	return append(k, c.KeyString()...)
}

func headKey(topic string, c cid.Cid) []byte {
	return append(namePrefix(pHead, topic), c.KeyString()...)
}

func topicStatKey(topic string) []byte {
	return append([]byte{pTopicStat}, topic...)
}
