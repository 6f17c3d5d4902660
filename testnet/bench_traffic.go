package testnet

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"
)

// Traffic is what the hosts of one side of a benchmark sent while records
// were published and delivered (BenchConfig.Traffic): gossipsub's RPCs by
// topic and kind, counted in gossipsub's raw tracer of every host, and the
// bytes written to streams, by protocol, counted by libp2p's bandwidth
// counter. Loopback traffic is received as sent, so only sending counts.
type Traffic struct {
	// Gossip is keyed by the topic class ("issue", "public", "index",
	// "members" for nodes, "raw" for the raw gossipsub topic; "" for control
	// entries without a topic) and the kind: "publish", "ihave", "iwant",
	// "idontwant", "graft", "prune", "subscription". Count is the number of
	// messages for publish, of message ids for ihave, iwant and idontwant,
	// of entries otherwise.
	Gossip map[TrafficKey]TrafficCount
	// RPCs and RPCBytes count the gossipsub RPCs sent (one per peer and
	// send) and their encoded length.
	RPCs, RPCBytes int64
	// Dropped counts RPCs gossipsub dropped because a peer's queue was full.
	Dropped int64
	// Streams is the bytes written to streams of each protocol, by all
	// hosts (gossipsub's included, with framing).
	Streams map[protocol.ID]int64
}

// TrafficKey is a topic class and a kind of gossipsub traffic.
type TrafficKey struct{ Topic, Kind string }

// TrafficCount is a number of items and their encoded bytes.
type TrafficCount struct{ Count, Bytes int64 }

// trafficTracer is a gossipsub raw tracer shared by every host of a side;
// gossipsub calls it from each host's event loop.
type trafficTracer struct {
	NopGossipTracer // the methods it does not count in
	mu              sync.Mutex
	cur             Traffic
}

var _ pubsub.RawTracer = (*trafficTracer)(nil)

func newTrafficTracer() *trafficTracer {
	return &trafficTracer{cur: Traffic{Gossip: map[TrafficKey]TrafficCount{}}}
}

// topicClass returns the class of a gossipsub topic name: the record
// topic's first segment for a node's topic (/clearinghouse/<network>/issue/x
// is "issue"), "raw" for anything else.
func topicClass(t string) string {
	rest, ok := strings.CutPrefix(t, "/clearinghouse/")
	if !ok {
		return "raw"
	}
	_, rest, _ = strings.Cut(rest, "/")
	class, _, _ := strings.Cut(rest, "/")
	return class
}

func (t *trafficTracer) add(topic, kind string, n int, bytes int) {
	k := TrafficKey{topicClass(topic), kind}
	if topic == "" {
		k.Topic = ""
	}
	c := t.cur.Gossip[k]
	c.Count += int64(n)
	c.Bytes += int64(bytes)
	t.cur.Gossip[k] = c
}

// SendRPC counts an RPC sent to a peer.
func (t *trafficTracer) SendRPC(rpc *pubsub.RPC, _ peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cur.RPCs++
	t.cur.RPCBytes += int64(proto.Size(&rpc.RPC))
	for _, m := range rpc.Publish {
		t.add(m.GetTopic(), "publish", 1, proto.Size(m))
	}
	for _, s := range rpc.Subscriptions {
		t.add(s.GetTopicid(), "subscription", 1, proto.Size(s))
	}
	c := rpc.Control
	if c == nil {
		return
	}
	for _, x := range c.Ihave {
		t.add(x.GetTopicID(), "ihave", len(x.MessageIDs), proto.Size(x))
	}
	for _, x := range c.Iwant {
		t.add("", "iwant", len(x.MessageIDs), proto.Size(x))
	}
	for _, x := range c.Idontwant {
		t.add("", "idontwant", len(x.MessageIDs), proto.Size(x))
	}
	for _, x := range c.Graft {
		t.add(x.GetTopicID(), "graft", 1, proto.Size(x))
	}
	for _, x := range c.Prune {
		t.add(x.GetTopicID(), "prune", 1, proto.Size(x))
	}
}

// DropRPC counts an RPC dropped for a full queue.
func (t *trafficTracer) DropRPC(*pubsub.RPC, peer.ID) {
	t.mu.Lock()
	t.cur.Dropped++
	t.mu.Unlock()
}

// snapshot returns a copy of the counts so far.
func (t *trafficTracer) snapshot() Traffic {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.cur
	s.Gossip = maps.Clone(t.cur.Gossip)
	return s
}

// trafficMeter counts a side's traffic when BenchConfig.Traffic is set;
// its zero value (nil fields) counts nothing.
type trafficMeter struct {
	gossip *trafficTracer
	bw     *metrics.BandwidthCounter
	start  Traffic
}

func newTrafficMeter(on bool) *trafficMeter {
	if !on {
		return &trafficMeter{}
	}
	return &trafficMeter{gossip: newTrafficTracer(), bw: metrics.NewBandwidthCounter()}
}

func (m *trafficMeter) streams() map[protocol.ID]int64 {
	out := map[protocol.ID]int64{}
	for p, s := range m.bw.GetBandwidthByProtocol() {
		out[p] = s.TotalOut
	}
	return out
}

// meterLag is how long the bandwidth counter's totals may lag behind the
// bytes written: its meters are updated by a sweeper once a second.
const meterLag = 1100 * time.Millisecond

// settleMeters waits until the bandwidth counter's totals include what
// was written before the call.
func settleMeters(ctx context.Context) {
	t := time.NewTimer(meterLag)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// begin marks the start of the measured interval; call it before the
// process CPU is read, as it waits for the bandwidth meters.
func (m *trafficMeter) begin(ctx context.Context) {
	if m.gossip == nil {
		return
	}
	m.start = m.gossip.snapshot()
	settleMeters(ctx)
	m.start.Streams = m.streams()
}

// end returns the traffic since begin (nil if not counted); call it after
// the process CPU is read, as it waits for the bandwidth meters.
func (m *trafficMeter) end(ctx context.Context) *Traffic {
	if m.gossip == nil {
		return nil
	}
	t := m.gossip.snapshot()
	settleMeters(ctx)
	t.Streams = m.streams()
	t.RPCs -= m.start.RPCs
	t.RPCBytes -= m.start.RPCBytes
	t.Dropped -= m.start.Dropped
	for k, c := range m.start.Gossip {
		d := t.Gossip[k]
		d.Count -= c.Count
		d.Bytes -= c.Bytes
		t.Gossip[k] = d
	}
	for p, b := range m.start.Streams {
		t.Streams[p] -= b
	}
	for k, c := range t.Gossip {
		if c.Count == 0 && c.Bytes == 0 {
			delete(t.Gossip, k)
		}
	}
	for p, b := range t.Streams {
		if b == 0 {
			delete(t.Streams, p)
		}
	}
	return &t
}

// FormatTraffic prints the traffic of both sides of a run, per record
// published: gossipsub items and bytes by topic and kind, RPCs, and stream
// bytes by protocol. It prints nothing if the traffic was not counted.
func FormatTraffic(w io.Writer, raw, ch BenchResult) {
	if raw.Traffic == nil || ch.Traffic == nil {
		return
	}
	per := func(v int64, records int) string {
		if records == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", float64(v)/float64(records))
	}
	kib := func(v int64, records int) string {
		if records == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f KiB", float64(v)/float64(records)/1024)
	}
	fmt.Fprintf(w, "traffic sent, per record published (%d gossipsub, %d clearinghouse)\n", raw.Records, ch.Records)
	fmt.Fprintf(w, "%-26s %10s %12s %10s %12s\n", "", "gs items", "gs bytes", "ch items", "ch bytes")
	row := func(name string, a, b TrafficCount) {
		fmt.Fprintf(w, "%-26s %10s %12s %10s %12s\n", name,
			per(a.Count, raw.Records), kib(a.Bytes, raw.Records), per(b.Count, ch.Records), kib(b.Bytes, ch.Records))
	}
	keys := slices.Collect(maps.Keys(raw.Traffic.Gossip))
	for k := range ch.Traffic.Gossip {
		if _, ok := raw.Traffic.Gossip[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b TrafficKey) int {
		return strings.Compare(a.Topic+" "+a.Kind, b.Topic+" "+b.Kind)
	})
	for _, k := range keys {
		name := k.Kind
		if k.Topic != "" {
			name = k.Topic + " " + k.Kind
		}
		row("gossip "+name, raw.Traffic.Gossip[k], ch.Traffic.Gossip[k])
	}
	row("gossip RPCs", TrafficCount{raw.Traffic.RPCs, raw.Traffic.RPCBytes}, TrafficCount{ch.Traffic.RPCs, ch.Traffic.RPCBytes})
	row("gossip RPCs dropped", TrafficCount{Count: raw.Traffic.Dropped}, TrafficCount{Count: ch.Traffic.Dropped})
	protos := slices.Collect(maps.Keys(raw.Traffic.Streams))
	for p := range ch.Traffic.Streams {
		if _, ok := raw.Traffic.Streams[p]; !ok {
			protos = append(protos, p)
		}
	}
	slices.Sort(protos)
	for _, p := range protos {
		name := "stream " + string(p)
		if p == "" {
			name = "stream, protocol not yet negotiated"
		}
		row(name, TrafficCount{Bytes: raw.Traffic.Streams[p]}, TrafficCount{Bytes: ch.Traffic.Streams[p]})
	}
}
