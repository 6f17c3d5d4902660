package node

import (
	"testing"
	"time"
)

func TestWithCheckpointInterval(t *testing.T) {
	for _, tt := range []struct {
		d  time.Duration
		ok bool
	}{{0, true}, {time.Minute, true}, {time.Hour, true}, {time.Second, false}, {-time.Minute, false}} {
		o := defaults()
		err := WithCheckpointInterval(tt.d)(&o)
		if (err == nil) != tt.ok {
			t.Errorf("WithCheckpointInterval(%s): %v, want ok %v", tt.d, err, tt.ok)
		}
		if err == nil && o.checkpointInterval != tt.d {
			t.Errorf("WithCheckpointInterval(%s) set %s", tt.d, o.checkpointInterval)
		}
	}
	if defaults().checkpointInterval != DefaultCheckpointInterval {
		t.Fatal("the default interval is not DefaultCheckpointInterval")
	}
}
