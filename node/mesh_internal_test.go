package node

import (
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestMeshTrackerCountsGossipDrops: what gossipsub drops on its own is
// counted (messages before the validator saw them, by reason; RPCs on
// their way out), and the validator's own verdicts are not counted twice.
func TestMeshTrackerCountsGossipDrops(t *testing.T) {
	m := newMeshTracker()
	// Before the counters are set (gossipsub not started), nothing panics.
	m.RejectMessage(nil, pubsub.RejectValidationThrottled)
	m.DropRPC(nil, "")

	reg := prometheus.NewRegistry()
	metrics := newMetrics(reg, nil)
	m.unchecked, m.rpcsDropped = metrics.unchecked, metrics.rpcsDropped
	for _, reason := range []string{
		pubsub.RejectValidationThrottled, pubsub.RejectValidationThrottled,
		pubsub.RejectValidationQueueFull,
		pubsub.RejectValidationFailed, pubsub.RejectValidationIgnored, // the validator's own
	} {
		m.RejectMessage(nil, reason)
	}
	m.DropRPC(nil, "")
	for label, want := range map[string]float64{"validation-throttled": 2, "validation-queue-full": 1, "validation-failed": 0, "validation-ignored": 0} {
		if got := counterValue(t, metrics.unchecked.WithLabelValues(label)); got != want {
			t.Errorf("unchecked{%s} = %v, want %v", label, got, want)
		}
	}
	if got := counterValue(t, metrics.rpcsDropped); got != 1 {
		t.Errorf("rpcs dropped = %v, want 1", got)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
