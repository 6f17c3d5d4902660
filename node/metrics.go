package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// metrics are the node's own Prometheus metrics. libp2p registers its own
// on the same registry.
type metrics struct {
	accepted *prometheus.CounterVec // by topic and source
	rejected *prometheus.CounterVec // by reason and topic
	withheld *prometheus.CounterVec // by source: records of blocked relaying keys (blocks.go)
	ingest   prometheus.Histogram   // seconds from receipt to durable store
	forward  prometheus.Histogram   // seconds from gossip receipt to forwarding
	batch    prometheus.Histogram   // records per signature batch
	pending  prometheus.GaugeFunc   // records waiting for their causal past
	// pendingBytes is the bytes of the records waiting; pendingDropped
	// counts the records dropped from the pending set, by cause.
	pendingBytes   prometheus.GaugeFunc
	pendingDropped *prometheus.CounterVec
	// penalties counts strikes against gossip peers' scores, by reason.
	penalties *prometheus.CounterVec
	// unchecked counts gossiped messages gossipsub dropped before the
	// node's validator saw them, by gossipsub's reason; rpcsDropped the
	// RPCs it dropped on their way to a peer whose queue was full.
	unchecked   *prometheus.CounterVec
	rpcsDropped prometheus.Counter
	stored      prometheus.GaugeFunc // records in the store
	bytes       prometheus.GaugeFunc // bytes of records in the store
	peers       prometheus.GaugeFunc // connected peers
	info        *prometheus.GaugeVec // constant 1 with network and role labels
	// equivocations counts records kept at a chain slot another record
	// of their author holds (a fork), by topic.
	equivocations *prometheus.CounterVec
	// bootstrapDials counts dials of bootstrap peers, by result.
	bootstrapDials *prometheus.CounterVec
	// netGauges are the gauges of NetStatus: reachability, relay
	// reservations, direct and relayed peers.
	netGauges []prometheus.Collector
	reg       *prometheus.Registry // where all of the above live
}

func newMetrics(reg *prometheus.Registry, n *Node) *metrics {
	m := &metrics{
		reg: reg,
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "clearinghouse", Name: "records_accepted_total",
			Help: "Records validated and durably stored, by record topic and source (gossip, sync, local).",
		}, []string{"topic", "source"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "clearinghouse", Name: "records_rejected_total",
			Help: "Records refused, by protocol reason and record topic (\"-\" when the topic is unknown). Reasons with action ignore are counted too.",
		}, []string{"reason", "topic"}),
		withheld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "clearinghouse", Name: "public_withheld_total",
			Help: "Records on public topics by a relaying key this node blocks, stored but neither forwarded nor shown, by source (gossip, sync, local).",
		}, []string{"source"}),
		equivocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "clearinghouse", Name: "equivocations_total",
			Help: "Records stored although their author already had another record at their chain slot (an equivocation: both are kept, the author's records count for nothing), by record topic.",
		}, []string{"topic"}),
		ingest: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "clearinghouse", Name: "ingest_seconds",
			Help:    "Time from receipt of a valid record to its durable store.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}),
		forward: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "clearinghouse", Name: "gossip_forward_seconds",
			Help:    "Time a gossiped record spends in this node before gossipsub may forward it: from the validator's call to its acceptance (signature and every check passed, durable write queued). This node's share of every hop's latency.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 12),
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "clearinghouse", Name: "verify_batch_records",
			Help:    "Records validated together by one verifier (their signatures checked in one batch).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
		pendingDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "clearinghouse", Name: "pending_dropped_total",
			Help: "Records dropped from the pending set without being stored, by cause (expired, evicted, restart).",
		}, []string{"cause"}),
		penalties: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "clearinghouse", Name: "gossip_penalties_total",
			Help: "Application penalties of gossip peers' scores, by reason (pending-expired, stranger-quota).",
		}, []string{"reason"}),
		unchecked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "clearinghouse", Name: "gossip_unchecked_total",
			Help: "Gossiped messages gossipsub dropped before this node's checks saw them, by gossipsub's reason (validation-throttled: more validations of the topic in flight than its validator may run, which happens when the node cannot keep up; validation-queue-full; ...). Sync fetches such records again.",
		}, []string{"reason"}),
		rpcsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "clearinghouse", Name: "gossip_rpcs_dropped_total",
			Help: "Gossipsub RPCs to peers dropped because the peer's outbound queue was full. The peer gets the records by sync instead.",
		}),
		bootstrapDials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "clearinghouse", Name: "bootstrap_dials_total",
			Help: "Dials of bootstrap peers by the discovery loop, by result (ok, failed).",
		}, []string{"result"}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "clearinghouse", Name: "node_info",
			Help: "Constant 1, labelled with the node's network id and role.",
		}, []string{"network", "role"}),
	}
	m.pending = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "clearinghouse", Name: "records_pending",
		Help: "Records waiting for their causal past.",
	}, func() float64 { return float64(n.ing.pendingCount()) })
	m.pendingBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "clearinghouse", Name: "pending_bytes",
		Help: "Bytes of the records waiting for their causal past.",
	}, func() float64 { return float64(n.ing.pendingB.Load()) })
	for _, c := range []string{dropExpired, dropEvicted, dropRestart} {
		m.pendingDropped.WithLabelValues(c)
	}
	m.stored = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "clearinghouse", Name: "store_records",
		Help: "Records held in the store.",
	}, func() float64 {
		st, err := n.store.Stats()
		if err != nil {
			return 0
		}
		return float64(st.Records)
	})
	m.bytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "clearinghouse", Name: "store_bytes",
		Help: "Bytes of the signed records held in the store (not counting indexes).",
	}, func() float64 {
		st, err := n.store.Stats()
		if err != nil {
			return 0
		}
		return float64(st.Bytes)
	})
	m.peers = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "clearinghouse", Name: "peers",
		Help: "Connected libp2p peers.",
	}, func() float64 { return float64(len(n.host.Network().Peers())) })
	netGauge := func(name, help string, f func(NetStatus) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "clearinghouse", Name: name, Help: help},
			func() float64 { return f(n.NetStatus()) })
	}
	m.netGauges = []prometheus.Collector{
		netGauge("reachability", "The node's reachability: 1 public, 0 unknown, -1 private (AutoNAT, or forced by network.reachability).",
			func(s NetStatus) float64 {
				switch s.Reachability {
				case ReachabilityPublic:
					return 1
				case ReachabilityPrivate:
					return -1
				}
				return 0
			}),
		netGauge("relay_reservations", "Relays holding a reservation for this node.",
			func(s NetStatus) float64 { return float64(len(s.Relays)) }),
		netGauge("peers_direct", "Connected peers with a direct connection.",
			func(s NetStatus) float64 { return float64(countPeers(s, true)) }),
		netGauge("peers_relayed", "Connected peers reached only through a relay.",
			func(s NetStatus) float64 { return float64(countPeers(s, false)) }),
	}
	return m
}

// countPeers counts the peers of s with a direct connection (direct) or
// with relayed connections only.
func countPeers(s NetStatus, direct bool) int {
	k := 0
	for _, p := range s.Peers {
		if p.Direct == direct {
			k++
		}
	}
	return k
}

// register adds the metrics to the registry; duplicates (a shared
// registry) are an error.
func (m *metrics) register(withProcess bool) error {
	cs := []prometheus.Collector{m.accepted, m.rejected, m.withheld, m.equivocations, m.ingest, m.forward, m.batch, m.pending, m.pendingBytes, m.pendingDropped, m.penalties, m.unchecked, m.rpcsDropped, m.stored, m.bytes, m.peers, m.info, m.bootstrapDials}
	cs = append(cs, m.netGauges...)
	if withProcess {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) reject(reason protocol.Reason, topic string) {
	if topic == "" {
		topic = "-"
	}
	m.rejected.WithLabelValues(string(reason), topic).Inc()
}

// bootstrapDial counts one dial of a bootstrap peer by its result.
func (m *metrics) bootstrapDial(err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.bootstrapDials.WithLabelValues(result).Inc()
}
