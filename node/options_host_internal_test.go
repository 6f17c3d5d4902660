package node

import (
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// TestWithGossipTracer: a nil tracer is refused; tracers accumulate in
// order (New installs them after the node's own mesh tracker; TestRunBench
// in testnet checks that one counts a node's gossip).
func TestWithGossipTracer(t *testing.T) {
	o := defaults()
	if err := WithGossipTracer(nil)(&o); err == nil {
		t.Error("WithGossipTracer(nil): no error")
	}
	a, b := newMeshTracker(), newMeshTracker()
	for _, tr := range []pubsub.RawTracer{a, b} {
		if err := WithGossipTracer(tr)(&o); err != nil {
			t.Fatal(err)
		}
	}
	if len(o.gossipTracer) != 2 || o.gossipTracer[0] != a || o.gossipTracer[1] != b {
		t.Errorf("tracers %v, want [a b]", o.gossipTracer)
	}
}
