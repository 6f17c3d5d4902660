package opendata

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// ErrUnknownTopic is returned by SelectTopic for a topic the store holds no
// record of.
var ErrUnknownTopic = fmt.Errorf("opendata: no records on this topic: %w", store.ErrNotFound)

// ErrBadTopic is returned by SelectTopic for a malformed topic name.
var ErrBadTopic = errors.New("opendata: bad topic")

// Selection says which records an archive holds. The zero Selection is the
// whole federation. Build one with SelectTopic or SelectProcess.
type Selection struct {
	// Roots are the CAR roots after the network id (docs/protocol.md
	// section 12): the topic's heads, or the process's charter.
	Roots []cid.Cid
	// Seeds are the records whose causal past, with themselves, is
	// exported; nil means every stored record.
	Seeds []cid.Cid
	// Name describes the selection in messages ("federation", a topic, a
	// process CID).
	Name string
}

// SelectTopic selects the records of a record topic ("index", "members",
// "issue/<slug>") and their causal past: the causal past of the topic's
// current heads, which are the roots.
func SelectTopic(n *node.Node, topic string) (Selection, error) {
	if err := protocol.ValidTopic(topic); err != nil {
		return Selection{}, fmt.Errorf("%w: %w", ErrBadTopic, err)
	}
	heads, err := n.Store().Heads(topic)
	if err != nil {
		return Selection{}, fmt.Errorf("opendata: heads of %s: %w", topic, err)
	}
	if len(heads) == 0 {
		return Selection{}, fmt.Errorf("%w: %s", ErrUnknownTopic, topic)
	}
	return Selection{Roots: heads, Seeds: heads, Name: topic}, nil
}

// SelectProcess selects every record of the process chartered by charter
// (the charter and every record whose body names it as its process) and
// their causal past; the charter is the root. It fails with an error
// wrapping node.ErrUnknownProcess if the node has no such process. The
// process's records are found by reading its issue topic from the store.
func SelectProcess(ctx context.Context, n *node.Node, charter cid.Cid) (Selection, error) {
	if _, err := n.Process(charter); err != nil {
		return Selection{}, err
	}
	st := n.Store()
	m, err := st.Meta(charter)
	if err != nil {
		return Selection{}, fmt.Errorf("opendata: charter %s: %w", charter, err)
	}
	seeds := []cid.Cid{charter}
	var after uint64
	for {
		if err := ctx.Err(); err != nil {
			return Selection{}, err
		}
		metas, err := st.TopicRecords(m.Topic, after, 1000)
		if err != nil {
			return Selection{}, fmt.Errorf("opendata: read %s: %w", m.Topic, err)
		}
		if len(metas) == 0 {
			break
		}
		for _, rm := range metas {
			after = rm.Arrival
			r, err := n.Record(rm.CID)
			if err != nil {
				return Selection{}, err
			}
			if proc, _, ok := protocol.ProcessRefs(r.Body); ok && proc.Equals(charter) {
				seeds = append(seeds, rm.CID)
			}
		}
	}
	return Selection{Roots: []cid.Cid{charter}, Seeds: seeds, Name: "process " + charter.String()}, nil
}

// Progress is how far an export or import has got.
type Progress struct {
	// Blocks and Bytes are the blocks handled so far (the genesis
	// included) and their size in the archive.
	Blocks int
	Bytes  int64
	// Total is the number of blocks expected, 0 if unknown.
	Total int
}

// progressEvery is how many blocks pass between two progress calls.
const progressEvery = 1000

// Plan is an export whose content is fixed: the records stored when it
// was made (for a topic or a process, the CIDs selected). Make it with
// NewPlan, then Write it; Blocks says how many blocks Write will write, so
// that a server can announce it before the first byte.
type Plan struct {
	st    *store.Store
	net   cid.Cid
	gen   []byte
	roots []cid.Cid
	last  uint64               // the last arrival exported
	want  map[cid.Cid]struct{} // nil: every record up to last
	total int
}

// NewPlan plans the export of the selected records of the store st of the
// federation g. For a topic or a process it collects the CIDs of the
// selected records (about 100 bytes each); for the whole federation it
// only notes the last record stored.
func NewPlan(ctx context.Context, st *store.Store, g *protocol.Genesis, sel Selection) (*Plan, error) {
	gen, err := g.Encode()
	if err != nil {
		return nil, fmt.Errorf("opendata: genesis: %w", err)
	}
	roots, err := Roots(g, sel)
	if err != nil {
		return nil, err
	}
	stats, err := st.Stats()
	if err != nil {
		return nil, fmt.Errorf("opendata: %w", err)
	}
	p := &Plan{st: st, net: roots[0], gen: gen, roots: roots, last: stats.LastArrival, total: int(stats.Records) + 1}
	if sel.Seeds != nil {
		if p.want, err = closure(ctx, st, sel.Seeds); err != nil {
			return nil, err
		}
		p.total = len(p.want) + 1
	}
	return p, nil
}

// Blocks returns the number of blocks the archive will hold, the genesis
// included.
func (p *Plan) Blocks() int { return p.total }

// Roots returns the archive's roots.
func (p *Plan) Roots() []cid.Cid { return p.roots }

// Write writes the planned archive's blocks to cw, in the block order of
// docs/protocol.md section 12: the genesis first, then the records in the
// store's arrival order, which is causal (every record after its causal
// past). The caller made cw with p.Roots(). The store is read in pages, so
// Write's memory does not grow with the store. progress, if not nil, is
// called every 1000 blocks and at the end, on the caller's goroutine.
// Write does not flush cw.
func (p *Plan) Write(ctx context.Context, cw *CARWriter, progress func(Progress)) error {
	start := cw.Blocks()
	report := func(force bool) {
		if n := cw.Blocks() - start; progress != nil && (force || n%progressEvery == 0) {
			progress(Progress{Blocks: n, Bytes: cw.Size(), Total: p.total})
		}
	}
	if err := cw.Put(p.net, p.gen); err != nil {
		return err
	}
	report(false)
	var after uint64
	left := len(p.want)
	for after < p.last && (p.want == nil || left > 0) {
		if err := ctx.Err(); err != nil {
			return err
		}
		metas, err := p.st.Since(after, 1000)
		if err != nil {
			return fmt.Errorf("opendata: read store: %w", err)
		}
		if len(metas) == 0 {
			break
		}
		for _, m := range metas {
			after = m.Arrival
			if after > p.last {
				break
			}
			if p.want != nil {
				if _, ok := p.want[m.CID]; !ok {
					continue
				}
				left--
			}
			raw, err := p.st.Get(m.CID)
			if err != nil {
				return fmt.Errorf("opendata: read %s: %w", m.CID, err)
			}
			if err := cw.Put(m.CID, raw); err != nil {
				return err
			}
			report(false)
		}
	}
	if left > 0 {
		// The closure was read from the store, which is causally closed;
		// a record it found and the scan did not is a damaged index.
		return fmt.Errorf("opendata: %d selected records were not found in the arrival index", left)
	}
	report(true)
	return nil
}

// ExportCAR plans and writes an export to cw (NewPlan, then Plan.Write).
// The caller made cw with Roots(g, sel).
func ExportCAR(ctx context.Context, cw *CARWriter, st *store.Store, g *protocol.Genesis, sel Selection, progress func(Progress)) error {
	p, err := NewPlan(ctx, st, g, sel)
	if err != nil {
		return err
	}
	return p.Write(ctx, cw, progress)
}

// Roots returns the CAR roots of a selection: the network id, then the
// selection's roots.
func Roots(g *protocol.Genesis, sel Selection) ([]cid.Cid, error) {
	net, err := g.NetworkID()
	if err != nil {
		return nil, fmt.Errorf("opendata: genesis: %w", err)
	}
	return append([]cid.Cid{net}, sel.Roots...), nil
}

// closure returns the seeds and every record in their causal past.
func closure(ctx context.Context, st *store.Store, seeds []cid.Cid) (map[cid.Cid]struct{}, error) {
	set := make(map[cid.Cid]struct{}, len(seeds))
	stack := append([]cid.Cid(nil), seeds...)
	for len(stack) > 0 {
		if len(set)%progressEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := set[c]; ok {
			continue
		}
		raw, err := st.Get(c)
		if err != nil {
			return nil, fmt.Errorf("opendata: read %s: %w", c, err)
		}
		r, err := protocol.Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("opendata: stored record %s: %w", c, err)
		}
		set[c] = struct{}{}
		for _, l := range r.Links() {
			if _, ok := set[l]; !ok {
				stack = append(stack, l)
			}
		}
	}
	return set, nil
}

// WriteCAR writes a planned export as a CARv1 stream on w, flushed at the
// end: what the HTTP API serves. It returns the number of blocks and bytes
// written.
func (p *Plan) WriteCAR(ctx context.Context, w io.Writer, progress func(Progress)) (Progress, error) {
	cw, err := NewCARWriter(w, p.roots)
	if err != nil {
		return Progress{}, err
	}
	err = p.Write(ctx, cw, progress)
	err = errors.Join(err, cw.Flush())
	return Progress{Blocks: cw.Blocks(), Bytes: cw.Size(), Total: p.total}, err
}

// WriteCAR plans an export and writes it as a CARv1 stream on w.
func WriteCAR(ctx context.Context, w io.Writer, st *store.Store, g *protocol.Genesis, sel Selection, progress func(Progress)) (Progress, error) {
	p, err := NewPlan(ctx, st, g, sel)
	if err != nil {
		return Progress{}, err
	}
	return p.WriteCAR(ctx, w, progress)
}
