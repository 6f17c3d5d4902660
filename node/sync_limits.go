package node

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// SyncLimits are the per-peer budgets of sync (docs/protocol.md, "Sync
// budgets and penalties"). Each one bounds what a single peer can make
// this node spend, whichever side opened the stream; sessions with
// different peers run concurrently and each has its own budgets, so one
// slow or hostile peer delays nobody else.
type SyncLimits struct {
	// RequestTimeout is the deadline of one request and its response, and
	// of one inbound request frame. A peer that misses it is penalised
	// (reason "stall"). Default 30 s; must be > 0.
	RequestTimeout time.Duration
	// SessionBudget bounds one sync session with one peer (a topic
	// reconciliation and its fetches), and the lifetime of one inbound
	// stream. A session still running when it ends is cut and the peer
	// penalised (reason "session-budget"). Default 2 min; must be >=
	// RequestTimeout.
	SessionBudget time.Duration
	// MaxNeed bounds the ids one session accepts from a peer's
	// reconciliation. At the bound the session stops reconciling, fetches
	// what it has, and another session continues if everything claimed was
	// served. Default 50,000; must be > 0.
	MaxNeed int
	// MaxSessionBytes bounds the record bytes one session fetches; at the
	// bound the session ends and another continues. Default 256 MiB; must
	// be >= protocol.SyncMaxFrame.
	MaxSessionBytes int64
	// FrameMemory bounds, across all peers and streams, the bytes of sync
	// frames being read at once. An inbound frame that does not fit is
	// refused (the stream is reset, counted as "busy"); an outbound
	// session waits for room up to RequestTimeout. Default 64 MiB; must be
	// >= protocol.SyncMaxFrame.
	FrameMemory int64
	// MaxStreamTopics bounds the distinct topics one inbound stream may
	// ask about; the item sets they need are held only by that stream.
	// Default 16; must be > 0.
	MaxStreamTopics int
}

// DefaultSyncLimits returns the default sync budgets.
func DefaultSyncLimits() SyncLimits {
	return SyncLimits{
		RequestTimeout:  30 * time.Second,
		SessionBudget:   2 * time.Minute,
		MaxNeed:         50_000,
		MaxSessionBytes: 256 << 20,
		FrameMemory:     64 << 20,
		MaxStreamTopics: 16,
	}
}

// validate checks l.
func (l SyncLimits) validate() error {
	const maxFrame = protocol.SyncMaxFrame
	switch {
	case l.RequestTimeout <= 0:
		return errors.New("node: sync limits: request timeout must be > 0")
	case l.SessionBudget < l.RequestTimeout:
		return errors.New("node: sync limits: session budget must be >= the request timeout")
	case l.MaxNeed <= 0:
		return errors.New("node: sync limits: max need must be > 0")
	case l.MaxSessionBytes < maxFrame:
		return fmt.Errorf("node: sync limits: max session bytes must be >= %d", maxFrame)
	case l.FrameMemory < maxFrame:
		return fmt.Errorf("node: sync limits: frame memory must be >= %d", maxFrame)
	case l.MaxStreamTopics <= 0:
		return errors.New("node: sync limits: max stream topics must be > 0")
	}
	return nil
}

// WithSyncLimits sets the per-peer sync budgets (default
// DefaultSyncLimits()). Every field must be set; see SyncLimits for the
// constraints.
func WithSyncLimits(l SyncLimits) Option {
	return func(o *options) error {
		if err := l.validate(); err != nil {
			return err
		}
		o.syncLimits = l
		return nil
	}
}

// memBudget is a counting semaphore of bytes shared by every sync stream:
// the global cap on frame memory. The zero value is unusable; use
// newMemBudget.
type memBudget struct {
	mu    sync.Mutex // guards used and wake
	max   int64
	used  int64
	wake  chan struct{} // closed and replaced when bytes are released
	inUse func(int64)   // observes used after every change; may be nil
}

func newMemBudget(max int64, inUse func(int64)) *memBudget {
	return &memBudget{max: max, wake: make(chan struct{}), inUse: inUse}
}

// tryAcquire takes n bytes if they fit now and reports whether it did.
func (b *memBudget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	b.observe()
	return true
}

// acquire takes n bytes, waiting until they fit or done is closed, and
// reports whether it took them.
func (b *memBudget) acquire(n int64, done <-chan struct{}) bool {
	for {
		b.mu.Lock()
		if b.used+n <= b.max {
			b.used += n
			b.observe()
			b.mu.Unlock()
			return true
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-done:
			return false
		}
	}
}

// release returns n bytes.
func (b *memBudget) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	b.observe()
	close(b.wake)
	b.wake = make(chan struct{})
}

func (b *memBudget) observe() {
	if b.inUse != nil {
		b.inUse(b.used)
	}
}

// readFrame reads one sync frame into v like protocol.ReadFrame, but
// charges the frame's announced size to the global frame memory b while it
// is read, and allocates the body as its bytes arrive rather than up front,
// so a frame announced and never sent pins no memory. With wait nil a
// frame that does not fit fails at once with errFrameMemory; otherwise it
// waits for room until wait is closed, calls rearm (if not nil) to give the
// peer its deadline again, and returns how long it waited (time that is
// this node's, not the peer's).
func readFrame(r *bufio.Reader, v any, b *memBudget, wait <-chan struct{}, rearm func()) (time.Duration, error) {
	size, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, err
	}
	if size > protocol.SyncMaxFrame {
		return 0, fmt.Errorf("%w: %d bytes", protocol.ErrFrameTooLarge, size)
	}
	n := int64(size)
	var ok bool
	var waited time.Duration
	if wait == nil {
		ok = b.tryAcquire(n)
	} else {
		start := time.Now()
		ok = b.acquire(n, wait)
		waited = time.Since(start)
		if ok && rearm != nil && waited > time.Millisecond {
			rearm()
		}
	}
	if !ok {
		return waited, fmt.Errorf("%w: a frame of %d bytes", errFrameMemory, n)
	}
	defer b.release(n)
	const chunk = 64 << 10
	body := make([]byte, 0, min(n, chunk))
	for int64(len(body)) < n {
		if len(body) == cap(body) {
			body = slices.Grow(body, int(min(n-int64(len(body)), int64(len(body)))))
		}
		k, err := r.Read(body[len(body):min(cap(body), int(n))])
		body = body[:len(body)+k]
		if int64(len(body)) == n {
			break
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return waited, err
		}
	}
	return waited, protocol.Unmarshal(body, v)
}

// isTimeout reports whether err is a deadline that passed.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
