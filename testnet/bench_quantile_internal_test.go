package testnet

import (
	"testing"
	"time"
)

// TestHistogramQuantile: quantiles of the observations between two
// readings of a histogram, interpolated within a bucket as Prometheus
// does, from the difference of the readings only.
func TestHistogramQuantile(t *testing.T) {
	uppers := []float64{0.001, 0.01, 0.1, 1}
	// Before: 100 observations, all under 1 ms. Between the readings: 10
	// under 1 ms, 80 in (1, 10] ms, 10 in (10, 100] ms.
	t0 := histTotals{count: 100, uppers: uppers, buckets: []uint64{100, 100, 100, 100}}
	t1 := histTotals{count: 200, uppers: uppers, buckets: []uint64{110, 190, 200, 200}}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{0.05, 500 * time.Microsecond},                  // halfway into the first bucket
		{0.50, time.Millisecond + 9*time.Millisecond/2}, // (50-10)/80 of (1, 10] ms
		{0.95, 55 * time.Millisecond},                   // halfway into (10, 100] ms
		{1, 100 * time.Millisecond},
	} {
		got := t1.quantile(t0, c.q)
		if d := got - c.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("q%.2f = %v, want %v", c.q, got, c.want)
		}
	}
	if got := t0.quantile(t0, 0.5); got != 0 {
		t.Errorf("no observations between the readings: %v, want 0", got)
	}
	// Beyond the largest finite bound: that bound.
	t2 := histTotals{count: 1, uppers: []float64{0.001}, buckets: []uint64{0}}
	if got := t2.quantile(histTotals{}, 0.5); got != time.Millisecond {
		t.Errorf("in the unbounded bucket: %v, want 1ms", got)
	}
}
