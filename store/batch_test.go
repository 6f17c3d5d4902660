package store

import (
	"context"
	"testing"

	"github.com/ipfs/go-cid"
)

func TestPutBatch(t *testing.T) {
	s := openMem(t)
	a := author(4)
	e1 := mkEntry(t, "b", a, "t", 1, cid.Undef)
	e2 := mkEntry(t, "b", a, "t", 2, e1.CID)
	e3 := mkEntry(t, "b", author(5), "t", 1, cid.Undef, e2.CID)
	metas, err := s.PutBatch(context.Background(), []Entry{e1, e2, e3}, 9)
	wantNoErr(t, err)
	for i, m := range metas {
		if m.Arrival != uint64(i+1) || m.FirstSeen != 9 {
			t.Fatalf("meta %d = %+v, want arrival %d in call order", i, m, i+1)
		}
	}
	heads, err := s.Heads("t")
	wantNoErr(t, err)
	if !cidsEqual(heads, []cid.Cid{e3.CID}) {
		t.Fatalf("heads = %v, want [%s]", heads, e3.CID)
	}

	// A duplicate inside one call is reported like a sequential one; the
	// other entries are stored.
	e4 := mkEntry(t, "b", a, "t", 3, e2.CID)
	metas, err = s.PutBatch(context.Background(), []Entry{e4, e4}, 10)
	wantErr(t, err, ErrExists)
	if metas[0].Arrival != 4 || metas[1].Arrival != 4 {
		t.Fatalf("metas = %+v, want both arrival 4", metas)
	}

	bad := e4
	bad.Seq = 0
	_, err = s.PutBatch(context.Background(), []Entry{e4, bad}, 1)
	wantErr(t, err, ErrInvalid)

	wantNoErr(t, s.Close())
	_, err = s.PutBatch(context.Background(), []Entry{e4}, 1)
	wantErr(t, err, ErrClosed)
}
