package testnet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// GossipPeer is a raw gossipsub peer on loopback, with the nodes' message
// id and no gossipsub signing, as an implementation in another language
// would be. It speaks no sync protocol. The hardening review (issue 17)
// flooded nodes from such a peer; the fault harness and the node's tests
// use it as the attacker and as an honest sender of hand-built records.
// Create it with NewGossipPeer; the caller must call Close.
type GossipPeer struct {
	host   host.Host
	ps     *pubsub.PubSub
	cancel context.CancelFunc
	mu     sync.Mutex
	topics map[string]*pubsub.Topic
	netID  cid.Cid
}

// NewGossipPeer starts a raw gossip peer of the network netID. Its
// outbound queue holds queue messages per peer (a flood must not be
// dropped at its own end).
func NewGossipPeer(netID cid.Cid, queue int) (*GossipPeer, error) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		return nil, fmt.Errorf("testnet: gossip peer host: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageIdFn(func(m *pb.Message) string { return protocol.RecordCID(m.Data).KeyString() }),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(),
		pubsub.WithFloodPublish(true), pubsub.WithMaxMessageSize(protocol.MaxGossipFrame),
		pubsub.WithPeerOutboundQueueSize(queue))
	if err != nil {
		cancel()
		_ = h.Close()
		return nil, fmt.Errorf("testnet: gossip peer: %w", err)
	}
	return &GossipPeer{host: h, ps: ps, cancel: cancel, topics: map[string]*pubsub.Topic{}, netID: netID}, nil
}

// ID returns the peer's id.
func (g *GossipPeer) ID() peer.ID { return g.host.ID() }

// Connect connects the peer to a node.
func (g *GossipPeer) Connect(ctx context.Context, ai peer.AddrInfo) error {
	return g.host.Connect(ctx, ai)
}

// Join joins the record topic t (and subscribes, so that nodes see the
// peer on the topic).
func (g *GossipPeer) Join(t string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.topics[t]; ok {
		return nil
	}
	tp, err := g.ps.Join(protocol.PubsubTopic(g.netID, t))
	if err != nil {
		return fmt.Errorf("testnet: gossip peer: join %s: %w", t, err)
	}
	if _, err := tp.Subscribe(); err != nil {
		return fmt.Errorf("testnet: gossip peer: subscribe %s: %w", t, err)
	}
	g.topics[t] = tp
	return nil
}

// WaitTopicPeer waits until p is on the peer's record topic t (joined).
func (g *GossipPeer) WaitTopicPeer(ctx context.Context, t string, p peer.ID) error {
	g.mu.Lock()
	tp, ok := g.topics[t]
	g.mu.Unlock()
	if !ok {
		return fmt.Errorf("testnet: gossip peer: topic %s not joined", t)
	}
	ev, err := tp.EventHandler()
	if err != nil {
		return err
	}
	defer ev.Cancel()
	for _, q := range tp.ListPeers() {
		if q == p {
			return nil
		}
	}
	for {
		e, err := ev.NextPeerEvent(ctx)
		if err != nil {
			return fmt.Errorf("testnet: gossip peer: %s never joined %s: %w", p, t, err)
		}
		if e.Type == pubsub.PeerJoin && e.Peer == p {
			return nil
		}
	}
}

// Publish sends the record raw on topic t (joined).
func (g *GossipPeer) Publish(ctx context.Context, t string, raw []byte) error {
	g.mu.Lock()
	tp, ok := g.topics[t]
	g.mu.Unlock()
	if !ok {
		return fmt.Errorf("testnet: gossip peer: topic %s not joined", t)
	}
	return tp.Publish(ctx, raw)
}

// Close stops the peer.
func (g *GossipPeer) Close() error {
	g.cancel()
	return g.host.Close()
}

// FakeDepsFlood returns n records of the network netID that no node can
// ever store: each is signed by a fresh key that is no member, and names
// as its dep a CID nobody has. Of every applyEvery records one (none if
// applyEvery is 0) is a member.apply on the members topic, a kind a
// non-member may sign, so it may wait for its past; the others are
// statements on issueTopic, which only members may sign. Their claimed
// times are at now.
func FakeDepsFlood(netID cid.Cid, issueTopic string, n, applyEvery int, now time.Time) ([][]byte, error) {
	out := make([][]byte, n)
	for i := range out {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		fake, err := fakeRecordCID()
		if err != nil {
			return nil, err
		}
		d := protocol.Draft{Network: netID, Seq: 1, Deps: []cid.Cid{fake}, Time: now}
		if applyEvery > 0 && i%applyEvery == 0 {
			d.Kind, d.Topic = protocol.KindMemberApply, protocol.TopicMembers
			d.Body = &protocol.MemberApply{Org: fmt.Sprintf("Flood Org %d", i), Group: "civil-society",
				Region: "africa", Statement: "An application that waits for a past nobody has."}
		} else {
			d.Kind, d.Topic = protocol.KindStatement, issueTopic
			d.Body = &protocol.Statement{Title: fmt.Sprintf("flood %d", i), Text: "A non-member's record naming a dependency nobody has."}
		}
		r, err := protocol.Build(key, d)
		if err != nil {
			return nil, err
		}
		out[i] = r.Raw
	}
	return out, nil
}

// fakeRecordCID returns a record CID (dag-cbor, sha2-256) of random bytes.
func fakeRecordCID() (cid.Cid, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return cid.Undef, err
	}
	sum := sha256.Sum256(b[:])
	m, err := mh.Encode(sum[:], mh.SHA2_256)
	if err != nil {
		return cid.Undef, err
	}
	return cid.NewCidV1(cid.DagCBOR, m), nil
}
