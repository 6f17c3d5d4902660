package api

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// eventCacheBytes bounds the rendered events kept for event streams.
const eventCacheBytes = 8 << 20

// eventCache keeps recently rendered record events, so that a record
// stored while thousands of event streams are open is rendered once, not
// once per stream. Entries are evicted oldest first beyond
// eventCacheBytes.
type eventCache struct {
	mu    sync.Mutex // guards the fields below
	m     map[uint64][]byte
	order []uint64 // arrivals in insertion order
	bytes int
}

func (c *eventCache) get(arrival uint64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[arrival]
	return b, ok
}

func (c *eventCache) put(arrival uint64, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[uint64][]byte{}
	}
	if _, ok := c.m[arrival]; ok || len(b) > eventCacheBytes/4 {
		return
	}
	c.m[arrival] = b
	c.order = append(c.order, arrival)
	c.bytes += len(b)
	for c.bytes > eventCacheBytes && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.bytes -= len(c.m[old])
		delete(c.m, old)
	}
}

// renderEvent returns the SSE event of a stored record: from the cache,
// else rendered from rec (read from the store if nil) and cached.
func (s *Server) renderEvent(m store.Meta, rec *protocol.Record) ([]byte, error) {
	if b, ok := s.evCache.get(m.Arrival); ok {
		return b, nil
	}
	if rec == nil {
		var err error
		if rec, err = s.n.Record(m.CID); err != nil {
			return nil, err
		}
	}
	v, err := recordView(rec, &m)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	b := fmt.Appendf(nil, "id: %d\nevent: record\ndata: %s\n\n", m.Arrival, data)
	s.evCache.put(m.Arrival, b)
	return b, nil
}
