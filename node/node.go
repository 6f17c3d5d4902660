package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// GenesisFile is the name of the genesis file in a data directory.
const GenesisFile = "genesis.cbor"

// Node is a running clearinghouse peer. Create it with [New]; the caller
// must call [Node.Close].
type Node struct {
	opts    options
	log     *slog.Logger
	key     ed25519.PrivateKey // signs records; nil on an observer
	genesis *protocol.Genesis
	network cid.Cid
	devNet  bool // the node founded its own one-member dev federation
	// devFounded says it founded it in this start (not a restart).
	devFounded bool

	store   *store.Store
	host    host.Host
	ps      *pubsub.PubSub
	metrics *metrics
	ing     *ingester
	// joinMu serializes joining and leaving topics (held before mu).
	joinMu sync.Mutex
	// verifyJobs hands records to the verifier goroutines (runVerifier).
	verifyJobs chan *verifyJob
	// state is the derived state, owned by the apply loop (ingester.run);
	// snap is the immutable snapshot of it that readers load, published
	// after each durable write.
	state  *fedState
	snap   atomic.Pointer[snapshot]
	shown  *watermark // the newest arrival the published snapshot includes
	events *eventHub
	// blocks is the block list of relaying keys (blocks.go).
	blocks blockList
	// rejections fans out refused records; its zero value is ready.
	rejections rejectionHub
	mesh       *meshTracker
	sync       *syncer
	penalties  *penalties // score.go
	// scores are the gossip peer scores, as of gossipsub's last report
	// (GossipScore); never nil once New has started gossipsub.
	scores atomic.Pointer[scoreReport]
	net    *hostNet   // host.go
	disc   *discovery // discovery.go; nil until New has started it
	// peerWake is signalled (without blocking) when the set of connected
	// peers changes; the discovery loop waits on it.
	peerWake chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{}

	mu       sync.Mutex // guards topics, closed and reported
	topics   map[string]*joined
	closed   bool
	reported map[string]bool // equivocation slots this node published evidence for

	// gossipQ carries the node's own stored records to the gossip
	// goroutine (runGossip).
	gossipQ chan *protocol.Record

	// stopErr is the error that stopped the node (a failed durable
	// write), set once by fail.
	stopErr  atomic.Pointer[error]
	failOnce sync.Once

	// verifyInline holds a token per gossiped record checked on its
	// caller's goroutine (forward.go).
	verifyInline chan struct{}
}

// joined is a gossipsub topic the node has joined.
type joined struct {
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	done  chan struct{} // closed when the subscription has ended
}

// New starts a node: it opens the store, starts the libp2p host and
// gossipsub, joins the index and members topics and the followed issue
// topics, and dials the bootstrap peers. On error, everything started so far
// is closed.
func New(ctx context.Context, opts ...Option) (_ *Node, err error) {
	o := defaults()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.identity == nil {
		return nil, errors.New("node: an identity is required (WithIdentity)")
	}
	if o.dataDir == "" && !o.inMemory {
		return nil, errors.New("node: a data dir (WithDataDir) or WithInMemory is required")
	}
	if len(o.listen) == 0 {
		if err := WithListenAddrs(DefaultListenAddrs)(&o); err != nil {
			return nil, err
		}
	}
	n := &Node{opts: o, log: o.logger, topics: map[string]*joined{}, events: newEventHub(), mesh: newMeshTracker(), done: make(chan struct{}), peerWake: make(chan struct{}, 1)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	var cleanup []func() error
	defer func() {
		if err != nil {
			n.cancel()
			n.wg.Wait()
			for i := len(cleanup) - 1; i >= 0; i-- {
				_ = cleanup[i]()
			}
		}
	}()

	raw, err := o.identity.Raw()
	if err != nil {
		return nil, fmt.Errorf("node: identity: %w", err)
	}
	if !o.observer {
		n.key = ed25519.PrivateKey(raw)
	}

	// 1. The federation: everything below (topics, protocol ids,
	// validation) depends on the network id.
	if err := n.loadGenesis(ed25519.PrivateKey(raw)); err != nil {
		return nil, err
	}

	// 2. The store, before anything can deliver records into it.
	// One apply batch fits one group commit.
	sopts := []store.Option{store.WithLogger(o.logger), store.WithMaxBatch(maxApplyBatch)}
	if o.storeCache > 0 {
		sopts = append(sopts, store.WithCacheSize(o.storeCache))
	}
	dir := ""
	switch {
	case o.storeFS != nil:
		sopts = append(sopts, store.WithFS(o.storeFS))
		dir = "store"
	case o.inMemory:
		sopts = append(sopts, store.WithInMemory())
	default:
		dir = filepath.Join(o.dataDir, "store")
	}
	if n.store, err = store.Open(dir, sopts...); err != nil {
		return nil, fmt.Errorf("node: open store: %w", err)
	}
	cleanup = append(cleanup, n.store.Close)
	// The block list of relaying keys (blocks.go), before the apply loop
	// and the validators read it.
	if err := n.loadBlocks(); err != nil {
		return nil, err
	}

	// 3. Derived state (membership, issues, processes), from the records
	// already stored, before the apply loop adds new ones: the members and
	// index topics now, every other topic when the apply loop first needs
	// it (lazy.go), so the start does not grow with the store.
	if n.state, err = newFedState(n.genesis, o.logger); err != nil {
		return nil, err
	}
	loaded, err := n.state.openStore(n.store)
	if err != nil {
		return nil, err
	}
	if loaded > 0 {
		n.log.Info("state loaded", "records", loaded, "topics_deferred", len(n.state.loads))
	}
	// The apply loop is the store's one writer: it alone holds the
	// writer's handle.
	w, err := n.store.Writer()
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.ing = newIngester(n, w)
	// Readers see the state loaded from the store until the apply loop
	// publishes the next snapshot.
	n.ing.last = n.state.snapshot(nil)
	n.snap.Store(n.ing.last)
	st, err := n.store.Stats()
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.shown = newWatermark()
	n.shown.raise(st.LastArrival)
	// Own records are gossiped by one goroutine, after they are durable,
	// whether or not their publisher still waits.
	n.gossipQ = make(chan *protocol.Record, gossipQueue)
	n.wg.Go(func() { n.runGossip(n.ctx) })

	// 4. Metrics, before the host so libp2p can register its own.
	reg := o.registry
	ownRegistry := reg == nil
	if ownRegistry {
		reg = prometheus.NewRegistry()
	}
	n.metrics = newMetrics(reg, n)
	// The verifiers check every record before the apply loop sees it.
	n.verifyJobs = make(chan *verifyJob, verifyQueue*runtime.GOMAXPROCS(0))
	n.verifyInline = make(chan struct{}, runtime.GOMAXPROCS(0))
	for range runtime.GOMAXPROCS(0) {
		n.wg.Go(func() { n.runVerifier(n.ctx) })
	}
	// The syncer exists before any validator can report a gap to it; it
	// starts serving and pulling in step 7.
	n.sync = newSyncer(n)
	// Penalties of peers whose records waited in vain (pending.go),
	// part of their gossip score.
	n.penalties = newPenalties(o.clock, func(reason string) { n.metrics.penalties.WithLabelValues(reason).Inc() })
	// The apply loop owns the derived state; it runs until Close. It
	// starts once the metrics, the syncer and the penalties it reports
	// to exist.
	n.wg.Go(func() { n.ing.run(n.ctx) })

	// 5. The libp2p host (host.go): TCP and QUIC, default security (Noise,
	// TLS), connection and resource managers, NAT traversal.
	if n.host, err = n.newHost(reg); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, n.host.Close)
	if err := n.metrics.register(ownRegistry); err != nil {
		return nil, fmt.Errorf("node: register metrics: %w", err)
	}
	role := "member"
	if o.observer {
		role = "observer"
	}
	n.metrics.info.WithLabelValues(n.network.String(), role).Set(1)
	// Reachability and member protection follow the host's events.
	if err := n.startHostEvents(); err != nil {
		return nil, err
	}

	// 6. Gossipsub: message id = record CID, no gossipsub-level signing
	// (the record signature is the authority).
	n.scores.Store(&scoreReport{next: make(chan struct{})})
	n.mesh.unchecked, n.mesh.rpcsDropped = n.metrics.unchecked, n.metrics.rpcsDropped
	psOpts := append(gossipOptions(n.penalties.score),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(n.inspectScores), time.Second),
		pubsub.WithMessageIdFn(messageID),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithRawTracer(n.mesh),
	)
	for _, t := range o.gossipTracer {
		psOpts = append(psOpts, pubsub.WithRawTracer(t))
	}
	n.ps, err = pubsub.NewGossipSub(n.ctx, n.host, psOpts...)
	if err != nil {
		return nil, fmt.Errorf("node: start gossipsub: %w", err)
	}

	// 7. Topics: federation-wide ones, then followed issues.
	for _, t := range []string{protocol.TopicIndex, protocol.TopicMembers} {
		if err := n.join(t); err != nil {
			return nil, err
		}
	}
	for _, slug := range o.follow {
		if err := n.joinIssue(slug); err != nil {
			return nil, err
		}
	}
	// The issues followed at runtime (Follow), kept in the store.
	follows, err := n.store.Follows()
	if err != nil {
		return nil, err
	}
	for _, slug := range follows {
		if !protocol.ValidSlug(slug) {
			n.log.Warn("ignoring an invalid slug in the follow list", "slug", slug)
			continue
		}
		if err := n.joinIssue(slug); err != nil {
			return nil, err
		}
	}

	// 8. Sync: the stream handler and the loop that syncs on connection,
	// periodically and on gossip gaps. It starts after the topics are
	// joined (a session syncs the joined topics) and before the bootstrap
	// dials, so those connections trigger a sync. Peers that dialled in
	// earlier are covered by the periodic sync.
	if err := n.sync.start(); err != nil {
		return nil, err
	}

	// 9. Records that waited for their causal past when the node last
	// stopped: those past their TTL are dropped now, the others go
	// through ingest again, in the background.
	raws, times, err := n.loadPending()
	if err != nil {
		n.log.Warn("pending records not reloaded", "err", err)
	}
	n.wg.Go(func() { n.reingestPending(raws, times) })

	// 9b. A member node witnesses the issue topics it follows
	// (checkpoint.go); it needs the topics joined above.
	if n.key != nil && o.checkpointInterval > 0 {
		n.wg.Go(func() { n.runCheckpoints(o.checkpointInterval) })
	}

	// 10. Discovery (discovery.go), in the background: bootstrap peers,
	// retried while the node has fewer peers than it wants, the private
	// DHT and mDNS. A node must start even if its bootstrap peers are down.
	if n.disc, err = newDiscovery(n); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, n.disc.close)
	n.wg.Go(func() { n.disc.run(n.ctx) })

	n.log.Info("node started", "peer", n.host.ID(), "network", n.network, "federation", n.genesis.Name,
		"role", role, "dev_federation", n.devNet, "addrs", n.host.Addrs())
	if n.devFounded {
		n.log.Warn("no genesis given: this node founded a one-member dev federation; use `clearinghouse init --genesis FILE` to join a real one",
			"network", n.network)
	}
	return n, nil
}

// loadGenesis sets the node's federation from the WithGenesis option, the
// data directory's genesis file, or, failing both, a new dev federation
// (written to the data directory so the network id survives restarts).
func (n *Node) loadGenesis(key ed25519.PrivateKey) error {
	o := n.opts
	g := o.genesis
	path := ""
	if o.dataDir != "" {
		path = filepath.Join(o.dataDir, GenesisFile)
	}
	if g == nil && path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			if g, err = protocol.DecodeGenesis(data); err != nil {
				return fmt.Errorf("node: %s: %w", path, err)
			}
			if err := g.Verify(); err != nil {
				return fmt.Errorf("node: %s: %w", path, err)
			}
			n.devNet = protocol.IsDevGenesis(g)
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("node: read genesis: %w", err)
		}
	}
	if g == nil {
		if o.observer {
			return errors.New("node: an observer needs the federation's genesis (WithGenesis or a genesis file); it cannot found one")
		}
		var err error
		if g, err = protocol.DevGenesis(key, o.org, o.clock()); err != nil {
			return fmt.Errorf("node: dev genesis: %w", err)
		}
		n.devNet, n.devFounded = true, true
		if path != "" {
			data, err := g.Encode()
			if err != nil {
				return err
			}
			if err := writeFileAtomic(path, data, 0o644); err != nil {
				return fmt.Errorf("node: write genesis: %w", err)
			}
		}
	}
	id, err := g.NetworkID()
	if err != nil {
		return err
	}
	n.genesis, n.network = g, id
	if n.devNet {
		// A one-member dev federation has no peer to ask for its chain
		// heads (WithRecoverChain).
		n.opts.recoverChain = false
	}
	return nil
}

// loadPending reads the store's pending area: it drops the records that
// have waited longer than the pending TTL and returns the others with
// their receipt times.
func (n *Node) loadPending() (raws [][]byte, times []time.Time, err error) {
	var old []cid.Cid
	now := n.opts.clock()
	err = n.store.Pending(func(e store.PendingEntry) error {
		at := now // written before receipt times were kept
		if e.Received > 0 {
			at = time.UnixMilli(e.Received)
		}
		if now.Sub(at) > n.opts.pending.TTL {
			old = append(old, e.CID)
			return nil
		}
		raws, times = append(raws, e.Raw), append(times, at)
		return nil
	})
	for _, c := range old {
		if err := n.store.DeletePending(c); err != nil {
			n.log.Warn("pending record not removed", "cid", c, "err", err)
		}
	}
	n.metrics.pendingDropped.WithLabelValues(dropRestart).Add(float64(len(old)))
	if len(old) > 0 {
		n.log.Info("expired pending records dropped", "records", len(old), "ttl", n.opts.pending.TTL)
	}
	return raws, times, err
}

// reingestPending feeds the records loadPending kept back into the ingest
// path: each is stored if its past has arrived since, waits again if it
// still may (pending.go), or is dropped.
func (n *Node) reingestPending(raws [][]byte, times []time.Time) {
	if len(raws) == 0 {
		return
	}
	// Through the one ingest path, as one batch (parents first).
	wait, _ := n.ingestMany(n.ctx, raws, "", origin{src: SourceSync, received: times}, nil)
	stored, dropped := 0, 0
	for i, r := range wait() {
		switch {
		case r.err == nil:
			stored++
			_ = n.store.DeletePending(protocol.RecordCID(raws[i]))
		case protocol.ReasonOf(r.err) == protocol.ReasonDuplicate:
			_ = n.store.DeletePending(protocol.RecordCID(raws[i]))
		case protocol.ReasonOf(r.err) == protocol.ReasonMissingDeps:
		case n.ctx.Err() != nil:
			return
		default:
			// Can no longer complete here (unknown-author), over a quota,
			// or invalid.
			_ = n.store.DeletePending(protocol.RecordCID(raws[i]))
			dropped++
		}
	}
	n.metrics.pendingDropped.WithLabelValues(dropRestart).Add(float64(dropped))
	n.log.Info("pending records reloaded", "records", len(raws), "stored", stored, "dropped", dropped)
}

// writeFileAtomic writes data to path through a synced temporary file and a
// rename, so a crash leaves either the old file or the new one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// messageID is the gossipsub message id: the record CID's bytes. Every
// implementation on the network must use the same function.
func messageID(m *pb.Message) string {
	return protocol.RecordCID(m.Data).KeyString()
}

// join subscribes to a record topic and installs its validator. Joining a
// topic twice is a no-op.
func (n *Node) join(topic string) error {
	n.joinMu.Lock()
	defer n.joinMu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("node: closed")
	}
	if _, ok := n.topics[topic]; ok {
		return nil
	}
	name := protocol.PubsubTopic(n.network, topic)
	if err := n.ps.RegisterTopicValidator(name, n.validator(topic)); err != nil {
		return fmt.Errorf("node: validator for %s: %w", topic, err)
	}
	t, err := n.ps.Join(name)
	if err != nil {
		return fmt.Errorf("node: join %s: %w", topic, err)
	}
	if err := t.SetScoreParams(topicScoreParams()); err != nil {
		return fmt.Errorf("node: score params for %s: %w", topic, err)
	}
	sub, err := t.Subscribe()
	if err != nil {
		return fmt.Errorf("node: subscribe %s: %w", topic, err)
	}
	j := &joined{topic: t, sub: sub, done: make(chan struct{})}
	n.topics[topic] = j
	// The validator has already stored every delivered record; the
	// subscription only keeps the node in the topic's mesh.
	n.wg.Go(func() {
		defer close(j.done)
		for {
			if _, err := sub.Next(n.ctx); err != nil {
				return
			}
		}
	})
	n.log.Debug("joined topic", "topic", topic)
	return nil
}

// Follow joins the topic of an issue so the node receives, stores and
// forwards its records, and syncs the topic's history from the connected
// peers in the background. The node remembers it (in its store) and
// follows the issue again after a restart, until Unfollow.
func (n *Node) Follow(slug string) error {
	if !protocol.ValidSlug(slug) {
		return fmt.Errorf("node: follow: invalid issue slug %q", slug)
	}
	if err := n.joinIssue(slug); err != nil {
		return err
	}
	if err := n.store.SetFollow(slug, true); err != nil {
		return fmt.Errorf("node: follow %s: %w", slug, err)
	}
	n.sync.syncTopicWithAll(protocol.IssueTopic(slug))
	n.sync.syncTopicWithAll(protocol.PublicTopic(slug))
	return nil
}

// ErrFollowedByConfig is returned by Unfollow for an issue the node was
// started to follow (topics.follow, WithFollow).
var ErrFollowedByConfig = errors.New("followed by the node's configuration (topics.follow)")

// Unfollow leaves the topic of an issue: the node stops receiving,
// forwarding and syncing its records, and forgets the Follow. The records
// it holds stay in its store and readable. Unfollowing an issue the node
// does not follow does nothing; one it follows by its configuration fails
// with ErrFollowedByConfig.
func (n *Node) Unfollow(slug string) error {
	if !protocol.ValidSlug(slug) {
		return fmt.Errorf("node: unfollow: invalid issue slug %q", slug)
	}
	if slices.Contains(n.opts.follow, slug) {
		return fmt.Errorf("node: unfollow %s: %w", slug, ErrFollowedByConfig)
	}
	if err := n.store.SetFollow(slug, false); err != nil {
		return fmt.Errorf("node: unfollow %s: %w", slug, err)
	}
	if err := n.leave(protocol.PublicTopic(slug)); err != nil {
		return fmt.Errorf("node: unfollow %s: %w", slug, err)
	}
	return n.leave(protocol.IssueTopic(slug))
}

// leave leaves a record topic the node has joined; leaving a topic not
// joined does nothing.
func (n *Node) leave(t string) error {
	n.joinMu.Lock() // no join of t until it is left
	defer n.joinMu.Unlock()
	n.mu.Lock()
	j, ok := n.topics[t]
	if ok && !n.closed {
		delete(n.topics, t)
	}
	closed := n.closed
	n.mu.Unlock()
	if !ok || closed {
		return nil
	}
	// The topic can close once the subscription is gone, which its
	// reader sees first.
	j.sub.Cancel()
	<-j.done
	if err := j.topic.Close(); err != nil {
		return fmt.Errorf("node: leave %s: %w", t, err)
	}
	if err := n.ps.UnregisterTopicValidator(protocol.PubsubTopic(n.network, t)); err != nil {
		return fmt.Errorf("node: leave %s: %w", t, err)
	}
	n.log.Debug("left topic", "topic", t)
	return nil
}

// validator returns the gossipsub validator of a record topic. It ingests
// the record (validate, store durably) and accepts it for forwarding only
// then; it rejects records whose sender misbehaved and ignores duplicates,
// records from the future and records whose causal past is incomplete (the
// node gossips those itself once their past has arrived and they are
// stored).
func (n *Node) validator(topic string) pubsub.ValidatorEx {
	return func(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		if from == n.host.ID() {
			// Our own Publish: the record was stored before it was sent.
			if ok, _ := n.store.Has(protocol.RecordCID(msg.Data)); ok {
				return pubsub.ValidationAccept
			}
		}
		// gossipsub calls each validator on a new goroutine; grow its
		// stack once, for the checks, before they grow it step by step.
		growStack()
		// Forwarded once checked, while its durable write is in flight
		// (forward.go).
		start := time.Now()
		rec, err := n.ingestGossip(ctx, msg.Data, topic, msg.ReceivedFrom)
		if err == nil {
			n.metrics.forward.Observe(time.Since(start).Seconds())
			if n.Withheld(rec) {
				// Stored, but this node does not pass on the records
				// of a relaying key its operator blocked (blocks.go);
				// ignore costs the sender nothing. (The apply loop
				// counts it once stored.)
				return pubsub.ValidationIgnore
			}
			return pubsub.ValidationAccept
		}
		switch protocol.ReasonOf(err) {
		case protocol.ReasonMissingDeps:
			// Signature verified; it waits for its past here. It is not
			// forwarded until its past is complete (docs/protocol.md 7):
			// once stored, the node gossips it itself. Ask the forwarder
			// for the past.
			n.sync.missingParents(from, rec)
			return pubsub.ValidationIgnore
		case "":
			n.log.Error("ingest failed", "topic", topic, "err", err)
			return pubsub.ValidationIgnore
		}
		if protocol.ActionOf(err) == protocol.Reject {
			n.log.Debug("rejected record", "topic", topic, "from", from, "err", err)
			return pubsub.ValidationReject
		}
		return pubsub.ValidationIgnore
	}
}

// Close stops the node: it leaves every topic, stops gossipsub and the
// host, waits for its goroutines and closes the store. It is safe to call
// more than once, and from several goroutines: every call returns once
// the node is stopped.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		<-n.done // the first Close (or fail's) has finished
		return nil
	}
	n.closed = true
	topics := n.topics
	n.mu.Unlock()

	n.cancel()
	for _, j := range topics {
		j.sub.Cancel()
		_ = j.topic.Close()
	}
	var errs []error
	if n.disc != nil {
		errs = append(errs, n.disc.close())
	}
	errs = append(errs, n.host.Close())
	n.wg.Wait()
	errs = append(errs, n.store.Close())
	n.events.closeAll()
	close(n.done)
	return errors.Join(errs...)
}

// Done returns a channel closed when the node has stopped: after Close,
// or after the node stopped itself because a durable write failed (then
// Err says why).
func (n *Node) Done() <-chan struct{} { return n.done }

// ErrStopped is wrapped by the error Node.Err returns once the node has
// stopped itself.
var ErrStopped = errors.New("node: stopped after a failed durable write; restart it to rebuild its state from the store")

// Err returns nil while the node runs normally, and an error wrapping
// ErrStopped and the cause once a failed durable write made it stop.
func (n *Node) Err() error {
	if p := n.stopErr.Load(); p != nil {
		return *p
	}
	return nil
}

// fail stops the node after a durable write failed: the apply loop's
// working state is then ahead of the store, so the node must not go on
// (nothing of the failed batch was published to readers). It closes the
// node on a goroutine of its own, since it is called from the goroutines
// Close waits for; Done is closed when that is over.
func (n *Node) fail(cause error) {
	n.failOnce.Do(func() {
		err := fmt.Errorf("%w: %w", ErrStopped, cause)
		n.stopErr.Store(&err)
		n.log.Error("durable write failed; node stops", "err", cause)
		go func() {
			if err := n.Close(); err != nil {
				n.log.Error("close after a failed write", "err", err)
			}
		}()
	})
}

// ID returns the node's peer id.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Host returns the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Addrs returns the addresses other peers can dial the node on, each ending
// in /p2p/<peer id>: the announced ones (WithAnnounce) or the listen
// addresses with the ports bound and wildcards expanded to the interfaces'
// addresses, plus relay addresses while the node holds reservations.
func (n *Node) Addrs() []multiaddr.Multiaddr {
	p2p, err := multiaddr.NewComponent("p2p", n.host.ID().String())
	if err != nil {
		return nil
	}
	var out []multiaddr.Multiaddr
	for _, a := range n.host.Addrs() {
		out = append(out, a.Encapsulate(p2p.Multiaddr()))
	}
	return out
}

// AddrInfo returns the node's peer id and listen addresses.
func (n *Node) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}
}

// Connect dials a peer.
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error {
	return n.host.Connect(ctx, ai)
}

// NetworkID returns the federation's network id (its genesis CID).
func (n *Node) NetworkID() cid.Cid { return n.network }

// Genesis returns the federation's genesis.
func (n *Node) Genesis() *protocol.Genesis { return n.genesis }

// IsDevFederation reports whether the node founded its own one-member dev
// federation because it was started without a genesis.
func (n *Node) IsDevFederation() bool { return n.devNet }

// IsObserver reports whether the node is a read-only observer.
func (n *Node) IsObserver() bool { return n.opts.observer }

// Store returns the node's store, for reads.
func (n *Node) Store() *store.Store { return n.store }

// Registry returns the Prometheus registry holding the node's and libp2p's
// metrics.
func (n *Node) Registry() *prometheus.Registry { return n.metrics.reg }

// Topics returns the record topics the node has joined.
func (n *Node) Topics() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.topics))
	for t := range n.topics {
		out = append(out, t)
	}
	return out
}

// hasTopic reports whether the node has joined record topic t.
func (n *Node) hasTopic(t string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.topics[t]
	return ok
}

// PubsubPeers returns the peers the node sees on a record topic.
func (n *Node) PubsubPeers(topic string) []peer.ID {
	return n.ps.ListPeers(protocol.PubsubTopic(n.network, topic))
}

// WaitMeshPeers blocks until the node's gossipsub mesh of a record topic
// has at least k peers, or ctx ends: from then on, records flow through
// those peers. Tests use it instead of sleeping before they publish.
func (n *Node) WaitMeshPeers(ctx context.Context, topic string, k int) error {
	return n.mesh.wait(ctx, protocol.PubsubTopic(n.network, topic), k)
}

// WaitTopicPeers blocks until the node sees at least k gossipsub peers
// subscribed to a record topic it has joined, or ctx ends.
func (n *Node) WaitTopicPeers(ctx context.Context, topic string, k int) error {
	n.mu.Lock()
	j, ok := n.topics[topic]
	n.mu.Unlock()
	if !ok {
		return fmt.Errorf("node: topic %q not joined", topic)
	}
	h, err := j.topic.EventHandler()
	if err != nil {
		return err
	}
	defer h.Cancel()
	// The handler starts with a join event for every peer already on the
	// topic, so the set built from events alone is exact.
	peers := map[peer.ID]bool{}
	for len(peers) < k {
		ev, err := h.NextPeerEvent(ctx)
		if err != nil {
			return fmt.Errorf("node: waiting for %d peers on %s (have %d): %w", k, topic, len(peers), err)
		}
		switch ev.Type {
		case pubsub.PeerJoin:
			peers[ev.Peer] = true
		case pubsub.PeerLeave:
			delete(peers, ev.Peer)
		}
	}
	return nil
}
