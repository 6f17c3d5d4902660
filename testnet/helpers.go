package testnet

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Clock is a settable clock for node.WithClock, safe for concurrent use:
// tests of notice periods and stages give every node the same Clock and
// move it between records.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set sets the clock's time.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// PublishAll publishes a record on node i (node.Node.Publish) and waits
// until every node of the network holds it.
func (net *Network) PublishAll(ctx context.Context, i int, kind, topic string, body protocol.Body, deps ...cid.Cid) (*protocol.Record, error) {
	r, err := net.Nodes[i].Publish(ctx, kind, topic, body, deps...)
	if err != nil {
		return nil, fmt.Errorf("testnet: node %d: publish %s: %w", i, kind, err)
	}
	for j, nd := range net.Nodes {
		if err := nd.WaitRecords(ctx, r.CID); err != nil {
			return nil, fmt.Errorf("testnet: node %d waiting for %s: %w", j, kind, err)
		}
	}
	return r, nil
}

// SigningKey returns node i's identity key as the ed25519 key its records
// are signed with.
func (net *Network) SigningKey(i int) ed25519.PrivateKey {
	raw, err := net.Keys[i].Raw()
	if err != nil {
		panic(err) // the keys of a network are ed25519 keys, which always export
	}
	return ed25519.PrivateKey(raw)
}

// PublicKey returns node i's record signing key, public half.
func (net *Network) PublicKey(i int) []byte {
	return net.SigningKey(i).Public().(ed25519.PublicKey)
}
