package opendata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// SourceImport is the ingest source (a metrics label) of records read from
// an archive.
const SourceImport node.Source = "import"

// Reasons of failures that are not protocol rejection reasons.
const (
	// ReasonHashMismatch: a block's bytes do not hash to the CID it is
	// filed under (a damaged or altered file).
	ReasonHashMismatch protocol.Reason = "hash-mismatch"
	// ReasonBadCID: a block is not filed under its record CID (CIDv1,
	// dag-cbor, sha2-256).
	ReasonBadCID protocol.Reason = "bad-cid"
	// ReasonBadGenesis: the genesis block is missing, does not decode or
	// is not signed by every founder.
	ReasonBadGenesis protocol.Reason = "bad-genesis"
)

// ErrWrongFederation is returned by Import when the archive's first root
// is not the node's network id.
var ErrWrongFederation = errors.New("opendata: the archive is of another federation")

// Failure is a block that was not stored, and why.
type Failure struct {
	// CID is the CID the block is filed under in the archive.
	CID cid.Cid `json:"cid"`
	// Reason is a protocol rejection reason (docs/protocol.md section 7) or
	// one of hash-mismatch, bad-cid, bad-genesis.
	Reason protocol.Reason `json:"reason"`
	// Detail says what exactly failed.
	Detail string `json:"detail"`
}

// String returns "CID reason: detail".
func (f Failure) String() string { return fmt.Sprintf("%s %s: %s", f.CID, f.Reason, f.Detail) }

// ImportReport is what Import did.
type ImportReport struct {
	// Version is the CAR version read, 1 or 2.
	Version uint64 `json:"carVersion"`
	// Roots are the archive's roots.
	Roots []cid.Cid `json:"roots"`
	// Blocks counts the blocks read, the genesis included.
	Blocks int `json:"blocks"`
	// Stored counts the records stored by this import.
	Stored int `json:"stored"`
	// Held counts the records the node already held.
	Held int `json:"held"`
	// Failures lists the blocks not stored, in file order.
	Failures []Failure `json:"failures"`
	// Slugs are the issues the archive's records belong to, sorted.
	Slugs []string `json:"issues"`
}

// importWindow bounds the records being ingested at once.
const importWindow = 256

// item is the fate of one record of the archive.
type item struct {
	done chan struct{} // closed when failed is set
	fail *Failure      // nil once stored or held
}

// Import reads an archive and hands every record to n.Ingest, the path
// gossip and sync use: each is verified (encoding, signature, links,
// membership and the governance rules of its causal past) and stored only
// if valid. Records are ingested concurrently, in file order as far as
// their causal past allows. A record refused once because a parent was not
// stored yet is tried again after its parents in the file have been
// judged. Import returns ErrWrongFederation without storing anything if
// the archive's first root is not n's network id; otherwise every block
// not stored is listed in the report with its reason, and the error is
// only for a file that cannot be read on, or ctx's end. Import keeps the
// fate of every record read (about 150 bytes each) to judge the records
// that link to it, and at most importWindow records' bytes. progress, if
// not nil, is called every 1000 blocks and at the end.
func Import(ctx context.Context, n *node.Node, cr *CARReader, progress func(Progress)) (*ImportReport, error) {
	net := n.NetworkID()
	rep := &ImportReport{Version: cr.Version(), Roots: cr.Roots()}
	if len(rep.Roots) == 0 || !rep.Roots[0].Equals(net) {
		first := "none"
		if len(rep.Roots) > 0 {
			first = rep.Roots[0].String()
		}
		return rep, fmt.Errorf("%w: its network id (first root) is %s, this node's is %s", ErrWrongFederation, first, net)
	}
	var (
		mu     sync.Mutex // guards states, rep.Failures, rep.Stored, rep.Held, slugs
		states = map[cid.Cid]*item{}
		slugs  = map[string]bool{}
		wg     sync.WaitGroup
		sem    = make(chan struct{}, importWindow)
	)
	fail := func(it *item, f Failure) {
		mu.Lock()
		rep.Failures = append(rep.Failures, f)
		mu.Unlock()
		if it != nil {
			it.fail = &f
		}
	}
	var readErr error
	var bytesRead int64
	for {
		b, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		if err := ctx.Err(); err != nil {
			readErr = err
			break
		}
		rep.Blocks++
		bytesRead += int64(len(b.Data) + len(b.CID.Bytes()))
		if progress != nil && rep.Blocks%progressEvery == 0 {
			progress(Progress{Blocks: rep.Blocks, Bytes: bytesRead})
		}
		if b.CID.Equals(net) {
			if f := checkGenesis(b, n.Genesis()); f != nil {
				fail(nil, *f)
			}
			continue
		}
		mu.Lock()
		_, dup := states[b.CID]
		mu.Unlock()
		if dup {
			continue // the same block twice: judged once
		}
		it := &item{done: make(chan struct{})}
		switch {
		case !b.HashOK():
			fail(it, Failure{CID: b.CID, Reason: ReasonHashMismatch, Detail: "the block's bytes do not hash to its CID"})
		case !protocol.RecordCID(b.Data).Equals(b.CID):
			fail(it, Failure{CID: b.CID, Reason: ReasonBadCID, Detail: "a record must be filed under its CIDv1 dag-cbor sha2-256 CID, " + protocol.RecordCID(b.Data).String()})
		}
		if it.fail != nil {
			close(it.done)
			mu.Lock()
			states[b.CID] = it
			mu.Unlock()
			continue
		}
		// The links, to wait for the parents if need be. A record that
		// does not decode has none: Ingest says why it is refused.
		var parents []cid.Cid
		if r, err := protocol.Decode(b.Data); err == nil {
			parents = r.Links()
			if slug, ok := protocol.IssueSlug(r.Env.Topic); ok {
				mu.Lock()
				slugs[slug] = true
				mu.Unlock()
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			readErr = ctx.Err()
		}
		if readErr != nil {
			break
		}
		mu.Lock()
		states[b.CID] = it
		mu.Unlock()
		wg.Go(func() {
			defer func() { <-sem }()
			defer close(it.done)
			ingestOne(ctx, n, b, parents, it, states, &mu, rep, fail)
		})
	}
	wg.Wait()
	if readErr == nil && ctx.Err() != nil {
		readErr = ctx.Err() // records were left unjudged
	}
	if progress != nil {
		progress(Progress{Blocks: rep.Blocks, Bytes: bytesRead})
	}
	for s := range slugs {
		rep.Slugs = append(rep.Slugs, s)
	}
	slices.Sort(rep.Slugs)
	return rep, readErr
}

// pastMissing reports whether err refuses a record for now because its
// past is not stored yet: it waits (missing-deps), it could not wait
// (unknown-author: a key admitted in that past), or there was no room.
func pastMissing(err error) bool {
	switch protocol.ReasonOf(err) {
	case protocol.ReasonMissingDeps, protocol.ReasonUnknownAuthor, protocol.ReasonPendingFull:
		return true
	}
	return false
}

// ingestOne ingests one record, waiting for its parents in the file and
// trying again if it was held for them.
func ingestOne(ctx context.Context, n *node.Node, b Block, parents []cid.Cid, it *item,
	states map[cid.Cid]*item, mu *sync.Mutex, rep *ImportReport, fail func(*item, Failure)) {
	_, err := n.Ingest(ctx, b.Data, "", SourceImport)
	retried := false
	if pastMissing(err) {
		// The parents in the file were read before this record; wait
		// until each has been judged.
		var absent []cid.Cid
		for _, p := range parents {
			mu.Lock()
			pit, ok := states[p]
			mu.Unlock()
			if !ok {
				absent = append(absent, p)
				continue
			}
			select {
			case <-pit.done:
			case <-ctx.Done():
				return
			}
			if pit.fail != nil {
				fail(it, Failure{CID: b.CID, Reason: protocol.ReasonMissingDeps,
					Detail: fmt.Sprintf("parent %s was not stored (%s)", p, pit.fail.Reason)})
				return
			}
		}
		// Usually the record was released from the pending set with its
		// last parent, and stored in the same write: the store says so
		// without a second verification.
		if ok, herr := n.Store().Has(b.CID); herr == nil && ok {
			mu.Lock()
			rep.Stored++
			mu.Unlock()
			return
		}
		retried = true
		_, err = n.Ingest(ctx, b.Data, "", SourceImport)
		if pastMissing(err) {
			var missing []cid.Cid
			for _, p := range absent {
				if ok, herr := n.Store().Has(p); herr == nil && !ok {
					missing = append(missing, p)
				}
			}
			d := detail(err)
			if len(missing) > 0 {
				d = fmt.Sprintf("parent %s is neither stored nor before this record in the file", missing[0])
				if len(missing) > 1 {
					d += fmt.Sprintf(" (and %d more)", len(missing)-1)
				}
			}
			fail(it, Failure{CID: b.CID, Reason: protocol.ReasonMissingDeps, Detail: d})
			return
		}
	}
	switch {
	case err == nil:
		mu.Lock()
		rep.Stored++
		mu.Unlock()
	case protocol.ReasonOf(err) == protocol.ReasonDuplicate:
		mu.Lock()
		if retried {
			rep.Stored++ // stored with the parent it waited for
		} else {
			rep.Held++
		}
		mu.Unlock()
	case protocol.ReasonOf(err) != "":
		fail(it, Failure{CID: b.CID, Reason: protocol.ReasonOf(err), Detail: detail(err)})
	default:
		fail(it, Failure{CID: b.CID, Reason: "error", Detail: err.Error()})
	}
}

// checkGenesis checks the genesis block against the node's genesis.
func checkGenesis(b Block, g *protocol.Genesis) *Failure {
	want, err := g.Encode()
	if err != nil {
		return &Failure{CID: b.CID, Reason: ReasonBadGenesis, Detail: err.Error()}
	}
	if !bytes.Equal(b.Data, want) {
		return &Failure{CID: b.CID, Reason: ReasonHashMismatch, Detail: "the genesis block's bytes do not hash to the network id"}
	}
	return nil
}

// detail returns the detail of a protocol error (its text without the
// "protocol: <reason>: " the report shows apart), or the error's text.
func detail(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Detail != "" {
		return pe.Detail
	}
	return err.Error()
}
