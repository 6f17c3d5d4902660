package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// replayPage is how many store entries the event stream reads at once.
const replayPage = 256

// eventFlushDelay is the longest a stored record waits in an event
// stream's buffer before it is flushed to the client.
const eventFlushDelay = 50 * time.Millisecond

// events serves GET /events: Server-Sent Events of accepted records, each
// with "id: <arrival>". The stream first replays from the store every
// record after the cursor (Last-Event-ID, else ?after=, else 0), then
// follows new records. The store is the source of truth: a node event only
// wakes the stream, which then reads the store from its cursor, so records
// are sent in arrival order, once each, even if the subscription drops
// events or delivers a group commit out of order.
//
// A stream holds no backlog of its own beyond its send buffer
// (Limits.EventBuffer): a client that does not take a flush within
// Limits.EventWriteTimeout has fallen behind and is dropped, and resumes
// from the last id it got. At most Limits.MaxEventStreams streams are open
// at once; more get 503.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		s.metrics.streamsDropped.WithLabelValues("cap").Inc()
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable,
			fmt.Sprintf("too many event streams open (at most %d)", s.opts.limits.MaxEventStreams), "")
		return
	}
	q := r.URL.Query()
	topic, kind := q.Get("topic"), q.Get("kind")
	if topic != "" {
		if err := protocol.ValidTopic(topic); err != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error(), "")
			return
		}
	}
	from := q.Get("after")
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		from = id
	}
	last, err := cursor(from)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error(), "")
		return
	}
	if _, ok := w.(http.Flusher); !ok {
		writeError(w, http.StatusInternalServerError, CodeInternal, "streaming unsupported", "")
		return
	}
	// The stream is exempt from the server's read and write timeouts:
	// each flush has its own deadline instead.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	out := newEventWriter(w, s.opts.limits)

	// Subscribe before reading the store, so nothing stored in between is
	// missed. The filter only wakes the stream; it must not block. One
	// buffered event is enough to wake it: the store is read from the
	// cursor.
	sub := s.n.SubscribeBuffered(1, func(e node.Event) bool {
		return (topic == "" || e.Meta.Topic == topic) && (kind == "" || e.Meta.Kind == kind)
	})
	defer sub.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The first comment tells the client the stream is live: every record
	// stored from now on will be sent.
	fmt.Fprintf(out, ": clearinghouse events after %d\n\n", last)
	if err := out.Flush(); err != nil {
		return
	}
	// behind ends the stream of a client that stopped reading.
	behind := func(err error) {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.metrics.streamsDropped.WithLabelValues("behind").Inc()
			s.log.Debug("event stream dropped: client behind", "last", last, "err", err)
			return
		}
		s.log.Debug("event stream ended", "err", err)
	}

	// catchUp sends every matching stored record after last.
	catchUp := func() error {
		for {
			// With a topic, its index reads only that topic's records;
			// arrival numbers are global either way.
			var ms []store.Meta
			var err error
			if topic != "" {
				ms, err = s.n.Store().TopicRecords(topic, last, replayPage)
			} else {
				ms, err = s.n.Store().Since(last, replayPage)
			}
			if err != nil {
				return err
			}
			if len(ms) == 0 {
				return nil
			}
			for _, m := range ms {
				last = m.Arrival
				if (topic != "" && m.Topic != topic) || (kind != "" && m.Kind != kind) {
					continue
				}
				if err := s.sendRecord(out, m); err != nil {
					return err
				}
			}
			if err := out.Flush(); err != nil {
				return err
			}
		}
	}
	if err := catchUp(); err != nil {
		behind(err)
		return
	}
	tick := time.NewTicker(s.opts.heartbeat)
	defer tick.Stop()
	// Records that arrive close together are sent in one flush, at most
	// eventFlushDelay after the first of them: with thousands of streams
	// open, a flush per record per stream would cost a system call each.
	var (
		flush *time.Timer
		due   <-chan time.Time
		gap   bool // a record arrived out of sequence: read the store
	)
	defer func() {
		if flush != nil {
			flush.Stop()
		}
	}()
	arm := func() {
		if due != nil {
			return
		}
		if flush == nil {
			flush = time.NewTimer(eventFlushDelay)
		} else {
			flush.Reset(eventFlushDelay)
		}
		due = flush.C
	}
	for {
		select {
		case e, ok := <-sub.C:
			if !ok {
				return // node closed
			}
			if e.Meta.Arrival <= last {
				continue
			}
			arm()
			if gap || e.Meta.Arrival != last+1 || e.Record == nil {
				gap = true
				continue
			}
			// The next record, no gap: buffer it without reading the
			// store (the subscription's filter matched it).
			last = e.Meta.Arrival
			b, err := s.renderEvent(e.Meta, e.Record)
			if err == nil {
				_, err = out.Write(b)
			}
			if err != nil {
				behind(err)
				return
			}
		case <-due:
			due = nil
			err := out.Flush()
			if err == nil && gap {
				gap = false
				err = catchUp()
			}
			if err != nil {
				behind(err)
				return
			}
		case <-tick.C:
			// Also repairs a wake-up lost to a full subscription buffer.
			if err := catchUp(); err != nil {
				behind(err)
				return
			}
			fmt.Fprint(out, ": heartbeat\n\n")
			if err := out.Flush(); err != nil {
				behind(err)
				return
			}
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// sendRecord writes one record event.
func (s *Server) sendRecord(w io.Writer, m store.Meta) error {
	b, err := s.renderEvent(m, nil)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
