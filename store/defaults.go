package store

import "log/slog"

// Every default of the package lives here.
const (
	// defaultMaxBatch is the most entries one group commit writes.
	defaultMaxBatch = 512
	// maxMaxBatch bounds WithMaxBatch so that one batch stays a few MiB.
	maxMaxBatch = 1 << 16
	// defaultCacheSize is pebble's block cache size in bytes.
	defaultCacheSize = 32 << 20
	// defaultLimit is the page size of range reads called with limit <= 0.
	defaultLimit = 1000
	// maxLimit caps the page size of range reads.
	maxLimit = 10000
)

// defaults returns the options Open starts from before applying Option values.
func defaults() options {
	return options{
		maxBatch:  defaultMaxBatch,
		cacheSize: defaultCacheSize,
		logger:    slog.Default(),
	}
}

// clampLimit turns a caller's page size into the one used: limit <= 0 means
// defaultLimit, and no page is larger than maxLimit.
func clampLimit(limit int) int {
	if limit <= 0 {
		return defaultLimit
	}
	return min(limit, maxLimit)
}
