package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// meshTracker follows gossipsub's mesh through its raw tracer: which peers
// the node exchanges full messages with, per gossipsub topic. It also
// counts what gossipsub drops on its own, which would otherwise go unseen:
// messages dropped before the node's validator saw them, and RPCs dropped
// on their way out. Its methods are called by gossipsub's goroutines and
// must not block.
type meshTracker struct {
	mu      sync.Mutex // guards mesh and changed
	mesh    map[string]map[peer.ID]bool
	changed chan struct{} // closed and replaced on every change

	// unchecked and rpcsDropped are set before gossipsub starts (nil: not
	// counted).
	unchecked   *prometheus.CounterVec
	rpcsDropped prometheus.Counter
}

var _ pubsub.RawTracer = (*meshTracker)(nil)

func newMeshTracker() *meshTracker {
	return &meshTracker{mesh: map[string]map[peer.ID]bool{}, changed: make(chan struct{})}
}

func (m *meshTracker) update(f func()) {
	m.mu.Lock()
	f()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// Graft records a peer joining the mesh of a topic.
func (m *meshTracker) Graft(p peer.ID, topic string) {
	m.update(func() {
		if m.mesh[topic] == nil {
			m.mesh[topic] = map[peer.ID]bool{}
		}
		m.mesh[topic][p] = true
	})
}

// Prune records a peer leaving the mesh of a topic.
func (m *meshTracker) Prune(p peer.ID, topic string) {
	m.update(func() { delete(m.mesh[topic], p) })
}

// RemovePeer records a peer leaving every mesh.
func (m *meshTracker) RemovePeer(p peer.ID) {
	m.update(func() {
		for _, ps := range m.mesh {
			delete(ps, p)
		}
	})
}

// Leave forgets the mesh of a topic the node left.
func (m *meshTracker) Leave(topic string) {
	m.update(func() { delete(m.mesh, topic) })
}

// wait blocks until the mesh of topic has at least k peers.
func (m *meshTracker) wait(ctx context.Context, topic string, k int) error {
	for {
		m.mu.Lock()
		n, ch := len(m.mesh[topic]), m.changed
		m.mu.Unlock()
		if n >= k {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("node: waiting for %d mesh peers on %s (have %d): %w", k, topic, n, ctx.Err())
		}
	}
}

// The remaining RawTracer methods are not needed.

// AddPeer is a no-op.
func (m *meshTracker) AddPeer(peer.ID, protocol.ID) {}

// Join is a no-op.
func (m *meshTracker) Join(string) {}

// ValidateMessage is a no-op.
func (m *meshTracker) ValidateMessage(*pubsub.Message) {}

// DeliverMessage is a no-op.
func (m *meshTracker) DeliverMessage(*pubsub.Message) {}

// RejectMessage counts a message gossipsub dropped before the node's
// validator decided on it. The validator's own verdicts (reject, ignore)
// are counted where they are made, by protocol reason
// (clearinghouse_records_rejected_total).
func (m *meshTracker) RejectMessage(_ *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationFailed, pubsub.RejectValidationIgnored:
		return
	}
	if m.unchecked != nil {
		m.unchecked.WithLabelValues(strings.ReplaceAll(reason, " ", "-")).Inc()
	}
}

// DuplicateMessage is a no-op.
func (m *meshTracker) DuplicateMessage(*pubsub.Message) {}

// ThrottlePeer is a no-op.
func (m *meshTracker) ThrottlePeer(peer.ID) {}

// RecvRPC is a no-op.
func (m *meshTracker) RecvRPC(*pubsub.RPC) {}

// SendRPC is a no-op.
func (m *meshTracker) SendRPC(*pubsub.RPC, peer.ID) {}

// SendRPCCompleted is a no-op.
func (m *meshTracker) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}

// DropRPC counts an RPC gossipsub dropped because the peer's outbound
// queue was full.
func (m *meshTracker) DropRPC(*pubsub.RPC, peer.ID) {
	if m.rpcsDropped != nil {
		m.rpcsDropped.Inc()
	}
}

// UndeliverableMessage is a no-op.
func (m *meshTracker) UndeliverableMessage(*pubsub.Message) {}

// OnNewOutboundStream is a no-op.
func (m *meshTracker) OnNewOutboundStream(peer.ID, protocol.ID) {}

// OnClosedOutboundStream is a no-op.
func (m *meshTracker) OnClosedOutboundStream(peer.ID) {}
