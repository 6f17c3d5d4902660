package protocol

import (
	"bytes"
	"time"

	"github.com/ipfs/go-cid"
)

// Parent is what a receiver knows of one record in another record's
// immediate causal past (its prev or one of its deps): enough to check the
// links without the parent's bytes.
type Parent struct {
	CID    cid.Cid
	Author []byte
	Topic  string
	Seq    uint64
	Time   int64 // claimed time, unix milliseconds
}

// CheckParents checks r against its immediate causal past: the prev must be
// the author's own record on the same topic with seq one lower, and r may not
// claim a time before any parent's claimed time. parents must hold one entry
// per CID of r.Links(), in any order. It depends only on r and its parents,
// so every node reaches the same verdict.
func CheckParents(r *Record, parents []Parent) error {
	byCID := make(map[cid.Cid]*Parent, len(parents))
	for i := range parents {
		byCID[parents[i].CID] = &parents[i]
	}
	for _, c := range r.Links() {
		p, ok := byCID[c]
		if !ok {
			return Errorf(ReasonMissingDeps, "parent %s not known", c)
		}
		if r.Env.Time < p.Time {
			return Errorf(ReasonBadTime, "claims %s, before its parent %s (%s)",
				time.UnixMilli(r.Env.Time).UTC().Format(time.RFC3339Nano), c, time.UnixMilli(p.Time).UTC().Format(time.RFC3339Nano))
		}
	}
	if r.Env.Prev != nil {
		p := byCID[r.Env.Prev.Cid]
		switch {
		case !bytes.Equal(p.Author, r.Env.Author):
			return Errorf(ReasonBadLinks, "prev %s has another author", p.CID)
		case p.Topic != r.Env.Topic:
			return Errorf(ReasonBadLinks, "prev %s is on topic %q, not %q", p.CID, p.Topic, r.Env.Topic)
		case p.Seq+1 != r.Env.Seq:
			return Errorf(ReasonBadLinks, "seq %d follows prev with seq %d", r.Env.Seq, p.Seq)
		}
	}
	if ClassOf(r.Env.Topic) == ClassPublic {
		return checkPublicParents(r, byCID)
	}
	return nil
}
