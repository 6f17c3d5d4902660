package node

import (
	"maps"
	"slices"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/protocol/gov"
)

// snapshot is the derived state as readers see it: immutable, built by the
// apply loop from its fedState after a batch is applied, and published
// (n.snap) by the completion goroutine only once that batch is durable.
// Nothing in it points into the live state; parts that did not change are
// shared with the previous snapshot.
type snapshot struct {
	members *protocol.MemberSet
	issues  []gov.IssueInfo
	procs   map[cid.Cid]*ProcessState
	bySlug  map[string][]*ProcessState // sorted by charter CID
	// unloaded are the issues with stored records the apply loop has not
	// loaded yet (lazy.go): their processes are not in procs and bySlug
	// until a reader asks the loop for them (Node.issueSnapshot).
	unloaded map[string]bool
}

// ProcessState is the derived state of one process as of the node's last
// durable write: an immutable value, safe to keep and to read from any
// goroutine. Node.Audit gives the process's full audit.
type ProcessState struct {
	cid     cid.Cid
	topic   string
	charter *protocol.Charter
	stage   string
	records []cid.Cid
	adopted []cid.Cid
}

// CID returns the CID of the process's charter, which identifies it.
func (p *ProcessState) CID() cid.Cid { return p.cid }

// Topic returns the issue topic of the process.
func (p *ProcessState) Topic() string { return p.topic }

// Charter returns the process's charter body. It must not be modified.
func (p *ProcessState) Charter() *protocol.Charter { return p.charter }

// Stage returns the process stage (protocol.StageScoping, ...).
func (p *ProcessState) Stage() string { return p.stage }

// Len returns the number of valid records of the process, its charter
// included.
func (p *ProcessState) Len() int { return len(p.records) }

// Records returns the CIDs of the process's valid records, its charter
// first, in the order the node applied them.
func (p *ProcessState) Records() []cid.Cid { return slices.Clone(p.records) }

// Adopted returns the CIDs of the proposal versions adopted by a valid
// decision that has effect given every record held, sorted.
func (p *ProcessState) Adopted() []cid.Cid { return slices.Clone(p.adopted) }

func processState(p *gov.Process, topic string) *ProcessState {
	return &ProcessState{cid: p.CID(), topic: topic, charter: p.Charter(), stage: p.Stage(), records: p.Records(), adopted: p.Adopted()}
}

// snapshot builds the snapshot of the current state from prev (nil for
// the first), rebuilding only what changed since prev was built, and
// clears the change marks. Only the apply loop calls it.
func (s *fedState) snapshot(prev *snapshot) *snapshot {
	if prev == nil {
		prev = &snapshot{procs: map[cid.Cid]*ProcessState{}, bySlug: map[string][]*ProcessState{}}
		s.dirtyMembers, s.dirtyIndex, s.dirtyUnloaded = true, true, true
	}
	s.refreshMembers()
	for slug := range s.dirtyIssues {
		if s.unloaded[slug] {
			continue // partly loaded (lazy.go): marked again once whole
		}
		if is := s.issues[slug]; is != nil {
			for _, p := range is.Processes() {
				s.dirtyProcs[p.CID()] = slug
			}
		}
	}
	clear(s.dirtyIssues)
	if !s.dirtyMembers && !s.dirtyIndex && !s.dirtyUnloaded && len(s.dirtyProcs) == 0 {
		return prev
	}
	next := *prev
	if s.dirtyUnloaded {
		next.unloaded = maps.Clone(s.unloaded)
		s.dirtyUnloaded = false
	}
	if s.dirtyMembers {
		next.members = s.members.Members()
	}
	if s.dirtyIndex {
		next.issues = s.index.Issues()
	}
	if len(s.dirtyProcs) > 0 {
		next.procs = make(map[cid.Cid]*ProcessState, len(prev.procs)+len(s.dirtyProcs))
		for c, p := range prev.procs {
			next.procs[c] = p
		}
		next.bySlug = make(map[string][]*ProcessState, len(prev.bySlug))
		for slug, ps := range prev.bySlug {
			next.bySlug[slug] = ps
		}
		slugs := map[string]bool{}
		for c, slug := range s.dirtyProcs {
			if p, ok := s.issues[slug].Process(c); ok {
				next.procs[c] = processState(p, s.issues[slug].Topic())
				slugs[slug] = true
			}
		}
		for slug := range slugs {
			var ps []*ProcessState
			for _, p := range s.issues[slug].Processes() {
				ps = append(ps, next.procs[p.CID()])
			}
			next.bySlug[slug] = ps
		}
		clear(s.dirtyProcs)
	}
	s.dirtyMembers, s.dirtyIndex = false, false
	return &next
}

// snapshot returns the state readers see.
func (n *Node) snapshot() *snapshot { return n.snap.Load() }

// watermark is the arrival number (store.Meta.Arrival) of the newest
// record the published snapshot includes. WaitRecords waits on it, so that
// a record it reports stored is also visible to readers.
type watermark struct {
	mu sync.Mutex
	v  uint64
	ch chan struct{} // closed and replaced when v rises
}

func newWatermark() *watermark { return &watermark{ch: make(chan struct{})} }

// raise sets the watermark to v if that is higher, waking the waiters.
func (w *watermark) raise(v uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if v > w.v {
		w.v = v
		close(w.ch)
		w.ch = make(chan struct{})
	}
}

// wait blocks until the watermark reaches v and reports true, or reports
// false once ctxDone or nodeDone is closed first.
func (w *watermark) wait(v uint64, ctxDone, nodeDone <-chan struct{}) bool {
	for {
		w.mu.Lock()
		reached, ch := w.v >= v, w.ch
		w.mu.Unlock()
		if reached {
			return true
		}
		select {
		case <-ch:
		case <-ctxDone:
			return false
		case <-nodeDone:
			return false
		}
	}
}
