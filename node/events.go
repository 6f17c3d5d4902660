package node

import (
	"github.com/ipfs/go-cid"

	"sync"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// Event tells a subscriber that a record was durably stored.
type Event struct {
	Record *protocol.Record
	Meta   store.Meta
	Source Source
}

// Subscription delivers events of records stored after it was created.
// Events are never blocked on: a subscriber that falls more than its buffer
// behind loses events, which it can detect by a gap in Meta.Arrival and
// repair by reading the store from its last arrival (the store's arrival
// order is the same as the event order, except that concurrent writes of one
// group commit may be delivered out of arrival order). Close it when done.
type Subscription struct {
	C      <-chan Event
	c      chan Event
	hub    *eventHub
	once   sync.Once
	filter func(Event) bool
}

// Close stops delivery and closes C.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.hub.mu.Lock()
		delete(s.hub.subs, s)
		s.hub.mu.Unlock()
		close(s.c)
	})
}

type eventHub struct {
	mu   sync.Mutex // guards subs; held while sending (sends never block)
	subs map[*Subscription]struct{}
}

func newEventHub() *eventHub { return &eventHub{subs: map[*Subscription]struct{}{}} }

func (h *eventHub) subscribe(buffer int, filter func(Event) bool) *Subscription {
	c := make(chan Event, buffer)
	s := &Subscription{C: c, c: c, hub: h, filter: filter}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *eventHub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.filter != nil && !s.filter(e) {
			continue
		}
		select {
		case s.c <- e:
		default:
		}
	}
}

func (h *eventHub) closeAll() {
	h.mu.Lock()
	subs := h.subs
	h.subs = map[*Subscription]struct{}{}
	h.mu.Unlock()
	for s := range subs {
		s.once.Do(func() { close(s.c) })
	}
}

// Subscribe returns a subscription to records stored from now on, filtered
// by filter if it is not nil. filter is called synchronously on the ingest
// path and must be fast and must not block.
func (n *Node) Subscribe(filter func(Event) bool) *Subscription {
	return n.events.subscribe(DefaultEventBuffer, filter)
}

// SubscribeBuffered is Subscribe with a channel of buffer events (at least
// 1). Events beyond the buffer are dropped, never blocked on; a consumer
// that only needs to be woken when something is stored (and reads the
// store itself) uses a buffer of 1 and holds no backlog.
func (n *Node) SubscribeBuffered(buffer int, filter func(Event) bool) *Subscription {
	return n.events.subscribe(max(buffer, 1), filter)
}

// Rejection tells a subscriber that a record was refused.
type Rejection struct {
	// Reason is the protocol reason; its action says reject or ignore.
	Reason protocol.Reason
	// Topic is the record topic the record arrived on or claimed, or "".
	Topic string
	// CID is the record's CID if it decoded far enough to have one.
	CID cid.Cid
	// Source is where the record came from.
	Source Source
	// Err is the full error.
	Err error
}

// rejectionHub fans rejections out to subscribers without blocking.
type rejectionHub struct {
	mu   sync.Mutex // guards subs
	subs map[chan Rejection]struct{}
}

func (h *rejectionHub) publish(r Rejection) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		select {
		case c <- r:
		default:
		}
	}
}

// SubscribeRejections returns a channel of refused records (buffered;
// rejections beyond the buffer are dropped, never blocked on) and a function
// that ends the subscription.
func (n *Node) SubscribeRejections() (<-chan Rejection, func()) {
	c := make(chan Rejection, DefaultEventBuffer)
	h := &n.rejections
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[chan Rejection]struct{}{}
	}
	h.subs[c] = struct{}{}
	h.mu.Unlock()
	return c, func() {
		h.mu.Lock()
		delete(h.subs, c)
		h.mu.Unlock()
	}
}

// refused counts a refusal in the metrics and tells rejection subscribers.
func (n *Node) refused(err error, topic string, rec *protocol.Record, src Source) {
	r := Rejection{Reason: protocol.ReasonOf(err), Topic: topic, Source: src, Err: err}
	if rec != nil {
		r.CID = rec.CID
		if r.Topic == "" {
			r.Topic = rec.Env.Topic
		}
	}
	n.metrics.reject(r.Reason, r.Topic)
	n.rejections.publish(r)
}
