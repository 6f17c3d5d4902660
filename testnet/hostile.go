package testnet

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Hostile sync peers: raw libp2p hosts on loopback that speak the real sync
// wire protocol (protocol/syncwire.go) of a network and abuse it the ways
// the hardening review found (issue 17). The fault scenarios of the CLI and
// the node's tests drive them against real nodes.

// HostileKind says how a HostileSyncPeer abuses the sync protocol.
type HostileKind int

const (
	// Stalling answers every request just inside the requester's deadline,
	// and answers reconciliation with fingerprints that never match, so
	// that a session with it would never end on its own.
	Stalling HostileKind = iota + 1
	// FakeIDs claims, in every reconcile answer, ids of records it does
	// not hold, as many as fit a frame, and serves none of them.
	FakeIDs
	// Orphans claims and serves records it was given (WithRecords), all
	// of one topic, whose parents nobody has, and serves none of those
	// parents. On any other topic it holds nothing, so a victim's syncs of
	// other topics (on connection, say) find nothing wrong with it.
	Orphans
)

// String returns the kind's scenario name.
func (k HostileKind) String() string {
	switch k {
	case Stalling:
		return "stalling"
	case FakeIDs:
		return "fake-ids"
	case Orphans:
		return "orphans"
	}
	return fmt.Sprintf("hostile(%d)", int(k))
}

// HostileSyncPeer is a hostile sync responder. Create it with
// NewHostileSyncPeer; the caller must call Close.
type HostileSyncPeer struct {
	host       host.Host
	kind       HostileKind
	delay      time.Duration
	ids        int
	fakeFrame  []byte             // the encoded reconcile answer of a FakeIDs or Orphans peer
	records    map[cid.Cid][]byte // what an Orphans peer serves
	topic      string             // the topic of an Orphans peer's records
	emptyFrame []byte             // the reconcile answer of a peer holding nothing
	closing    chan struct{}
	mu         sync.Mutex // guards closed and wg.Add
	closed     bool
	wg         sync.WaitGroup

	requests atomic.Int64 // requests read
	claimed  atomic.Int64 // ids claimed (FakeIDs)
	streams  atomic.Int64 // streams opened to it
}

// MaxFakeIDs is how many ids one FakeIDs answer claims by default: as
// many as fit a sync frame (35 bytes each, encoded).
const MaxFakeIDs = (protocol.SyncMaxFrame - 64<<10) / 35

// HostileOption configures a HostileSyncPeer.
type HostileOption func(*HostileSyncPeer) error

// WithFakeIDs sets how many ids a FakeIDs peer claims per reconcile answer
// (default MaxFakeIDs); 1 <= n <= MaxFakeIDs.
func WithFakeIDs(n int) HostileOption {
	return func(hp *HostileSyncPeer) error {
		if n < 1 || n > MaxFakeIDs {
			return fmt.Errorf("testnet: fake ids per answer must be in [1, %d]", MaxFakeIDs)
		}
		hp.ids = n
		return nil
	}
}

// WithRecords gives an Orphans peer the records it claims and serves.
func WithRecords(raws [][]byte) HostileOption {
	return func(hp *HostileSyncPeer) error {
		if len(raws) == 0 || len(raws) > MaxFakeIDs {
			return fmt.Errorf("testnet: records: want 1 to %d", MaxFakeIDs)
		}
		hp.records = map[cid.Cid][]byte{}
		for _, raw := range raws {
			hp.records[protocol.RecordCID(raw)] = raw
		}
		return nil
	}
}

// NewHostileSyncPeer starts a hostile sync peer of the network netID on a
// loopback TCP port. delay is how long a Stalling peer waits before each
// answer (give it just under the victims' request timeout); FakeIDs peers
// answer at once.
func NewHostileSyncPeer(netID cid.Cid, kind HostileKind, delay time.Duration, opts ...HostileOption) (*HostileSyncPeer, error) {
	if kind != Stalling && kind != FakeIDs && kind != Orphans {
		return nil, fmt.Errorf("testnet: unknown hostile kind %d", int(kind))
	}
	if kind == Stalling && delay <= 0 {
		return nil, errors.New("testnet: a stalling peer needs a delay > 0")
	}
	hp := &HostileSyncPeer{kind: kind, delay: delay, ids: MaxFakeIDs, closing: make(chan struct{})}
	for _, o := range opts {
		if err := o(hp); err != nil {
			return nil, err
		}
	}
	if kind == Orphans {
		if hp.records == nil {
			return nil, errors.New("testnet: an orphans peer needs WithRecords")
		}
		var items []protocol.Item
		for c, raw := range hp.records {
			r, err := protocol.Decode(raw)
			if err != nil {
				return nil, fmt.Errorf("testnet: orphans: %w", err)
			}
			if hp.topic != "" && r.Env.Topic != hp.topic {
				return nil, fmt.Errorf("testnet: orphans: records of topics %q and %q, want one", hp.topic, r.Env.Topic)
			}
			hp.topic = r.Env.Topic
			it, err := protocol.ItemOf(c, r.Env.Time)
			if err != nil {
				return nil, err
			}
			items = append(items, it)
		}
		// In reconciliation order: time, then id.
		slices.SortFunc(items, func(a, b protocol.Item) int {
			if c := cmp.Compare(a.Time, b.Time); c != 0 {
				return c
			}
			return bytes.Compare(a.ID[:], b.ID[:])
		})
		ids := make([][]byte, len(items))
		for i := range items {
			ids[i] = items[i].ID[:]
		}
		var frame bytes.Buffer
		resp := protocol.SyncResponse{Type: protocol.SyncReconcile,
			Ranges: []protocol.Range{{Upper: protocol.Infinity, Mode: protocol.ModeIDList, IDs: ids}}}
		if err := protocol.WriteFrame(&frame, &resp); err != nil {
			return nil, fmt.Errorf("testnet: orphans answer: %w", err)
		}
		hp.fakeFrame = frame.Bytes()
		// Its answer on every other topic: an empty list of ids, as a
		// peer that holds nothing there gives. (A buffer of its own:
		// fakeFrame aliases frame's.)
		var eframe bytes.Buffer
		empty := protocol.SyncResponse{Type: protocol.SyncReconcile,
			Ranges: []protocol.Range{{Upper: protocol.Infinity, Mode: protocol.ModeIDList}}}
		if err := protocol.WriteFrame(&eframe, &empty); err != nil {
			return nil, fmt.Errorf("testnet: orphans answer: %w", err)
		}
		hp.emptyFrame = eframe.Bytes()
	}
	if kind == FakeIDs {
		// One answer, encoded once: the peer is as fast as it can be.
		buf := make([]byte, 32*hp.ids)
		_, _ = rand.Read(buf)
		ids := make([][]byte, hp.ids)
		for i := range ids {
			ids[i] = buf[32*i : 32*(i+1) : 32*(i+1)]
		}
		var frame bytes.Buffer
		resp := protocol.SyncResponse{Type: protocol.SyncReconcile,
			Ranges: []protocol.Range{{Upper: protocol.Infinity, Mode: protocol.ModeIDList, IDs: ids}}}
		if err := protocol.WriteFrame(&frame, &resp); err != nil {
			return nil, fmt.Errorf("testnet: fake-id answer: %w", err)
		}
		hp.fakeFrame = frame.Bytes()
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		return nil, fmt.Errorf("testnet: hostile host: %w", err)
	}
	hp.host = h
	h.SetStreamHandler(protocol.SyncProtocol(netID), hp.handle)
	return hp, nil
}

// Kind returns how the peer abuses the protocol.
func (hp *HostileSyncPeer) Kind() HostileKind { return hp.kind }

// ID returns the peer's id.
func (hp *HostileSyncPeer) ID() peer.ID { return hp.host.ID() }

// AddrInfo returns the peer's id and loopback addresses, to connect to.
func (hp *HostileSyncPeer) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: hp.host.ID(), Addrs: hp.host.Addrs()}
}

// Requests returns how many sync requests the peer has read.
func (hp *HostileSyncPeer) Requests() int64 { return hp.requests.Load() }

// Claimed returns how many fake ids the peer has claimed.
func (hp *HostileSyncPeer) Claimed() int64 { return hp.claimed.Load() }

// Streams returns how many sync streams were opened to the peer.
func (hp *HostileSyncPeer) Streams() int64 { return hp.streams.Load() }

// Close stops the peer and waits for its handlers.
func (hp *HostileSyncPeer) Close() error {
	hp.mu.Lock()
	if hp.closed {
		hp.mu.Unlock()
		return nil
	}
	hp.closed = true
	hp.mu.Unlock()
	close(hp.closing)
	err := hp.host.Close()
	hp.wg.Wait()
	return err
}

func (hp *HostileSyncPeer) handle(s network.Stream) {
	hp.mu.Lock()
	if hp.closed {
		hp.mu.Unlock()
		_ = s.Reset()
		return
	}
	hp.wg.Add(1)
	hp.mu.Unlock()
	defer hp.wg.Done()
	hp.streams.Add(1)
	defer s.Close()
	r := bufio.NewReader(s)
	for {
		var req protocol.SyncRequest
		if err := protocol.ReadFrame(r, &req); err != nil {
			return
		}
		hp.requests.Add(1)
		resp := protocol.SyncResponse{Type: req.Type}
		switch hp.kind {
		case Stalling:
			t := time.NewTimer(hp.delay)
			select {
			case <-t.C:
			case <-hp.closing:
				t.Stop()
				return
			}
			resp = hp.stall(&req)
		case FakeIDs:
			if req.Type == protocol.SyncReconcile {
				hp.claimed.Add(int64(hp.ids))
				if _, err := s.Write(hp.fakeFrame); err != nil {
					return
				}
				continue
			}
			// A fetch: as if it had looked at every CID and found none.
			resp.Served = len(req.CIDs)
		case Orphans:
			if req.Type == protocol.SyncReconcile {
				answer := hp.emptyFrame
				if req.Topic == hp.topic {
					hp.claimed.Add(int64(len(hp.records)))
					answer = hp.fakeFrame
				}
				if _, err := s.Write(answer); err != nil {
					return
				}
				continue
			}
			// A fetch: what it has, and not the parents.
			for _, b := range req.CIDs {
				if c, err := cid.Cast(b); err == nil {
					if raw, ok := hp.records[c]; ok {
						resp.Records = append(resp.Records, raw)
					}
				}
			}
			resp.Served = len(req.CIDs)
		}
		if err := protocol.WriteFrame(s, &resp); err != nil {
			return
		}
	}
}

// stall answers so that the requester always has more to ask: every
// fingerprint range gets a random fingerprint, every fetch looks at one
// CID and finds nothing.
func (hp *HostileSyncPeer) stall(req *protocol.SyncRequest) protocol.SyncResponse {
	resp := protocol.SyncResponse{Type: req.Type}
	switch req.Type {
	case protocol.SyncReconcile:
		for _, r := range req.Ranges {
			if r.Mode == protocol.ModeSkip {
				resp.Ranges = append(resp.Ranges, r)
				continue
			}
			fp := make([]byte, len(protocol.Fingerprint{}))
			_, _ = rand.Read(fp)
			resp.Ranges = append(resp.Ranges, protocol.Range{Upper: r.Upper, Mode: protocol.ModeFingerprint, FP: fp})
		}
	case protocol.SyncFetch:
		resp.Served = min(1, len(req.CIDs))
	}
	return resp
}
