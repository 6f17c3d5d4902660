package store

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleLogger routes pebble's printf-style logging to slog: informational
// chatter at debug level, errors at error level.
type pebbleLogger struct {
	log *slog.Logger
}

var _ pebble.Logger = pebbleLogger{}

// Infof logs pebble's informational messages at debug level.
func (l pebbleLogger) Infof(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("pebble", "detail", fmt.Sprintf(format, args...))
	}
}

// Errorf logs pebble's error messages at error level.
func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("pebble error", "detail", fmt.Sprintf(format, args...))
}

// Fatalf logs at error level and panics: pebble calls it only on invariant
// violations after which it must not continue, and its contract is that
// Fatalf does not return.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("pebble fatal", "detail", msg)
	panic("store: pebble fatal: " + msg)
}

// eventListener logs the pebble events a node operator needs to see. Data
// corruption is logged instead of crashing the process (pebble's default): the
// failing read returns an error, and the store reports it to its caller.
func eventListener(log *slog.Logger) *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			log.Error("pebble background error", "err", err)
		},
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			log.Error("pebble data corruption", "path", info.Path, "err", info.Details)
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			log.Warn("pebble disk slow", "path", info.Path, "op", info.OpType.String(), "duration", info.Duration)
		},
	}
}
