package node

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/store"
)

// The block list of relaying keys: the node-local answer to a node that
// relays abuse into the public comments (docs/protocol.md 8.9). Every
// public comment is signed by the node that accepted it, so an operator
// can name a key whose records on public topics this node no longer
// forwards by gossip nor shows on its pages.
//
// A block is local policy, not a validity rule: a blocked record stays
// valid, and the node still stores it and serves it to peers that ask for
// it by sync. That keeps every node's record set the same (sync
// reconciles to equality, never fetches a blocked record twice, and
// penalises no peer for holding one), and keeps the store causally
// closed: later records whose deps name a blocked comment (the topic
// heads another relay had seen, a member's response) are still applied.
// What the block withholds is this node's voice: it does not pass the
// record on by gossip, and its web pages leave it out. Peers that do not
// block the key get the record by gossip from other peers or by sync.

// ErrBlockedByConfig is returned by Unblock for a key blocked by the
// node's configuration (public.blocked, WithBlockedRelays).
var ErrBlockedByConfig = errors.New("blocked by the node's configuration (public.blocked)")

// ErrInvalidBlock is returned by Block and Unblock for a key that is not
// 32 bytes, and by Block for a reason that is too long or holds a control
// character.
var ErrInvalidBlock = errors.New("node: invalid block")

// ErrBlockSelf is returned by Block for the node's own key.
var ErrBlockSelf = errors.New("node: cannot block this node's own key")

// MaxBlockReason is the longest reason of a block, in bytes.
const MaxBlockReason = 200

// BlockInfo is an entry of the block list.
type BlockInfo struct {
	// Key is the blocked relaying key: a 32-byte ed25519 public key, the
	// author of the records blocked.
	Key []byte
	// Since is when the operator blocked it; zero for a key blocked by
	// the configuration.
	Since time.Time
	// Reason is the operator's note; may be empty.
	Reason string
	// Config reports whether the configuration blocks the key (it cannot
	// be unblocked at runtime).
	Config bool
}

// blockList is the node's block list; mu guards m, read by the gossip
// validators and the apply loop, written by Block and Unblock.
type blockList struct {
	mu sync.RWMutex
	m  map[string]BlockInfo
	// writeMu serialises Block and Unblock, so the store and m agree.
	writeMu sync.Mutex
}

// has reports whether key is blocked.
func (b *blockList) has(key []byte) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, ok := b.m[string(key)]
	return ok
}

// loadBlocks fills the block list from the configuration and the store.
func (n *Node) loadBlocks() error {
	n.blocks.m = map[string]BlockInfo{}
	stored, err := n.store.Blocks()
	if err != nil {
		return fmt.Errorf("node: block list: %w", err)
	}
	for _, b := range stored {
		n.blocks.m[string(b.Key)] = BlockInfo{Key: b.Key, Since: time.UnixMilli(b.Since).UTC(), Reason: b.Reason}
	}
	own := n.ownPublicKey()
	for _, k := range n.opts.blocked {
		if bytes.Equal(k, own) {
			return fmt.Errorf("node: blocked relays: %w (public.blocked lists it)", ErrBlockSelf)
		}
		e := n.blocks.m[string(k)]
		e.Key, e.Config = k, true
		n.blocks.m[string(k)] = e
	}
	return nil
}

// Blocked reports whether the node blocks the relaying key: it does not
// forward or show that key's records on public topics.
func (n *Node) Blocked(key []byte) bool { return n.blocks.has(key) }

// Withheld reports whether r is a record the node stores but neither
// forwards by gossip nor shows: one on a public topic whose author is
// blocked. Records on every other topic are never withheld: a block
// bounds the public's voice relayed by a node, never a member's part in
// a process.
func (n *Node) Withheld(r *protocol.Record) bool {
	if _, ok := protocol.PublicSlug(r.Env.Topic); !ok {
		return false
	}
	return n.blocks.has(r.Env.Author)
}

// Blocks returns the block list, sorted by key.
func (n *Node) Blocks() []BlockInfo {
	n.blocks.mu.RLock()
	out := make([]BlockInfo, 0, len(n.blocks.m))
	for _, b := range n.blocks.m {
		out = append(out, b)
	}
	n.blocks.mu.RUnlock()
	slices.SortFunc(out, func(a, b BlockInfo) int { return bytes.Compare(a.Key, b.Key) })
	return out
}

// Block adds key to the block list with the operator's reason (at most
// MaxBlockReason bytes of text without control characters): from now on
// the node neither forwards by gossip nor shows that key's records on
// public topics, and it remembers the block in its store across restarts,
// until Unblock. Blocking a key again replaces the reason. The node's own
// key cannot be blocked (ErrBlockSelf).
func (n *Node) Block(key []byte, reason string) (BlockInfo, error) {
	if len(key) != ed25519.PublicKeySize {
		return BlockInfo{}, fmt.Errorf("%w: key is %d bytes, want %d", ErrInvalidBlock, len(key), ed25519.PublicKeySize)
	}
	if err := checkReason(reason); err != nil {
		return BlockInfo{}, err
	}
	if bytes.Equal(key, n.ownPublicKey()) {
		return BlockInfo{}, ErrBlockSelf
	}
	n.blocks.writeMu.Lock()
	defer n.blocks.writeMu.Unlock()
	now := n.opts.clock().UTC().Truncate(time.Millisecond)
	if err := n.store.SetBlock(store.Block{Key: key, Since: now.UnixMilli(), Reason: reason}); err != nil {
		return BlockInfo{}, fmt.Errorf("node: block: %w", err)
	}
	k := bytes.Clone(key)
	n.blocks.mu.Lock()
	e := BlockInfo{Key: k, Since: now, Reason: reason, Config: n.blocks.m[string(k)].Config}
	n.blocks.m[string(k)] = e
	n.blocks.mu.Unlock()
	n.log.Info("relaying key blocked", "key", hex.EncodeToString(k), "reason", reason)
	return e, nil
}

// Unblock removes key from the block list: the node forwards and shows
// its public records again (those that arrived meanwhile were stored and
// reappear on the pages; gossip does not resend them, sync serves them).
// Unblocking a key that is not blocked does nothing; one the
// configuration blocks fails with ErrBlockedByConfig.
func (n *Node) Unblock(key []byte) error {
	if len(key) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: key is %d bytes, want %d", ErrInvalidBlock, len(key), ed25519.PublicKeySize)
	}
	n.blocks.writeMu.Lock()
	defer n.blocks.writeMu.Unlock()
	if slices.ContainsFunc(n.opts.blocked, func(k []byte) bool { return bytes.Equal(k, key) }) {
		return fmt.Errorf("node: unblock %x: %w", key, ErrBlockedByConfig)
	}
	if err := n.store.DeleteBlock(key); err != nil {
		return fmt.Errorf("node: unblock: %w", err)
	}
	n.blocks.mu.Lock()
	_, was := n.blocks.m[string(key)]
	delete(n.blocks.m, string(key))
	n.blocks.mu.Unlock()
	if was {
		n.log.Info("relaying key unblocked", "key", hex.EncodeToString(key))
	}
	return nil
}

// ownPublicKey returns the node's identity public key (the key it signs
// public comments with, an observer too).
func (n *Node) ownPublicKey() []byte {
	raw, err := n.opts.identity.Raw()
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return nil
	}
	return ed25519.PrivateKey(raw).Public().(ed25519.PublicKey)
}

func checkReason(s string) error {
	if len(s) > MaxBlockReason {
		return fmt.Errorf("%w: reason is %d bytes, limit %d", ErrInvalidBlock, len(s), MaxBlockReason)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return fmt.Errorf("%w: reason contains a control character", ErrInvalidBlock)
	}
	return nil
}
