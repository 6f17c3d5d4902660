package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// Pending records (docs/protocol.md 7.1). A record whose causal past the
// node lacks waits in the pending set until its past arrives. Any key can
// sign records and name CIDs nobody has, so the set is where a flood would
// pile up; four rules keep it to what can still become valid, and keep one
// sender's flood from pushing out anyone else's records:
//
//  1. Only what can still become valid waits. A record of a kind only
//     members may sign waits only if its author is, or was, a member key
//     in the membership of everything the node holds, or is a key a record
//     the node holds or holds waiting could still make one (an applicant's
//     own member.apply, stored or waiting; the new key of a waiting
//     member.rotate, the replacement key of a waiting member.revoke). Any other is refused with unknown-author, a
//     reject: its sender is penalised and it is not kept. (If it was
//     honest after all, its author's admission being among what the node
//     lacks, nothing is lost: once the admission arrives, sync fetches the
//     record again.) member.apply and public.comment, the kinds a
//     non-member may sign, wait under the quotas below.
//  2. Quotas: a sending peer may have PerPeer records waiting and an
//     author key PerAuthor; above them a record is refused with
//     pending-full (ignore; an honest burst can reach a quota, and sync
//     fetches what it refused again). Of a peer's records, at most
//     PerPeerStrangers may be records of keys the node knows as no
//     member, applicant or new key (member.apply, public.comment): above
//     it a record is refused with pending-full and the peer gets a strike
//     in its gossip score (penalties, score.go), since an honest peer
//     relays a handful of those at most. Records handed in locally (API,
//     import, reload at start) count against no peer.
//  3. A global cap (Records, Bytes): when it is reached, the new record
//     evicts the oldest record of the peer with the most records waiting,
//     if that peer has at least two more than the new record's sender;
//     else the new record is refused with pending-full. So a flood, even
//     from many peer identities, evicts only the flooders' records.
//  4. Expiry: a record waits at most TTL (its receipt time is kept in the
//     store's pending area, so a restart does not renew it). Its sender,
//     which never served its past, is penalised (gossip score; the sync
//     penalty too if it came by sync).
//
// At start, the pending area is read again: expired records are dropped,
// the others go through ingest, which applies rules 1-3 against the
// membership of what is stored (log: "pending records reloaded").

// PendingLimits bound the records waiting for their causal past.
type PendingLimits struct {
	// Records is how many records may wait in all; >= 1. Default
	// DefaultPendingRecords.
	Records int
	// Bytes is how many bytes of records may wait in all; >=
	// protocol.MaxRecordSize. Default DefaultPendingBytes.
	Bytes int
	// PerPeer is how many records received from one peer (gossip or
	// sync) may wait; 1 <= PerPeer <= Records. Default
	// DefaultPendingPerPeer.
	PerPeer int
	// PerPeerStrangers is how many of a peer's records may wait whose
	// authors the node knows of as no member, applicant or new key (they
	// wait only because their kind is open to non-members: member.apply,
	// public.comment); 1 <= PerPeerStrangers <= PerPeer. A record above it
	// is refused and costs the peer a strike in its gossip score. Default
	// DefaultPendingPerPeerStrangers.
	PerPeerStrangers int
	// PerAuthor is how many records signed by one key may wait;
	// 1 <= PerAuthor <= Records. Default DefaultPendingPerAuthor.
	PerAuthor int
	// TTL is how long a record may wait for its past; > 0. Default
	// DefaultPendingTTL.
	TTL time.Duration
}

// Defaults of PendingLimits.
const (
	// DefaultPendingPerPeer is how many records from one peer may wait:
	// half the set. A burst of 3,000 records from one node in 2 s left
	// more than 1,000 of them waiting at its peer (TestAbandonedPublishes
	// DoNotFork), so the quota is well above what one honest sender needs.
	DefaultPendingPerPeer = 5_000
	// DefaultPendingPerPeerStrangers is how many records of non-members
	// from one peer may wait: applications are rare.
	DefaultPendingPerPeerStrangers = 64
	// DefaultPendingPerAuthor is how many records of one author may wait.
	DefaultPendingPerAuthor = 5_000
	// DefaultPendingTTL is how long a record may wait for its past: many
	// periodic syncs (DefaultSyncInterval), each of which would have
	// fetched an honest record's past.
	DefaultPendingTTL = 10 * time.Minute
)

// DefaultPendingLimits returns the default bounds of the pending set.
func DefaultPendingLimits() PendingLimits {
	return PendingLimits{
		Records: DefaultPendingRecords, Bytes: DefaultPendingBytes,
		PerPeer: DefaultPendingPerPeer, PerPeerStrangers: DefaultPendingPerPeerStrangers,
		PerAuthor: DefaultPendingPerAuthor, TTL: DefaultPendingTTL,
	}
}

func (l PendingLimits) validate() error {
	switch {
	case l.Records < 1:
		return errors.New("node: pending limits: records: must be >= 1")
	case l.Bytes < protocol.MaxRecordSize:
		return fmt.Errorf("node: pending limits: bytes: must be >= %d", protocol.MaxRecordSize)
	case l.PerPeer < 1 || l.PerPeer > l.Records:
		return errors.New("node: pending limits: per_peer: must be in [1, records]")
	case l.PerPeerStrangers < 1 || l.PerPeerStrangers > l.PerPeer:
		return errors.New("node: pending limits: per_peer_strangers: must be in [1, per_peer]")
	case l.PerAuthor < 1 || l.PerAuthor > l.Records:
		return errors.New("node: pending limits: per_author: must be in [1, records]")
	case l.TTL <= 0:
		return errors.New("node: pending limits: ttl: must be > 0")
	}
	return nil
}

// Causes of a pending record's drop, the label of
// clearinghouse_pending_dropped_total.
const (
	dropExpired = "expired" // waited TTL
	dropEvicted = "evicted" // pushed out by another peer's record at the global cap
	dropRestart = "restart" // at start: expired, or refused by ingest again
)

// pendingSet is the records waiting for their causal past. It is owned by
// the apply loop: only the loop's goroutine touches it.
type pendingSet struct {
	in      *ingester
	lim     PendingLimits
	recs    map[cid.Cid]*applyReq
	waiting map[cid.Cid][]cid.Cid // missing parent -> records waiting for it
	bytes   int
	// Per sender: count and arrival order (CIDs of records gone are
	// skipped and compacted away). The local sender is "".
	peers    map[peer.ID]*peerPending
	byAuthor map[string]int
	// hopeful counts, for each key, the waiting members-topic records
	// that could make it a member key (rule 1).
	hopeful map[string]int
}

type peerPending struct {
	n         int
	strangers int // of n, those that wait only as a kind open to non-members
	order     []cid.Cid
}

func newPendingSet(in *ingester, lim PendingLimits) *pendingSet {
	return &pendingSet{
		in: in, lim: lim, recs: map[cid.Cid]*applyReq{}, waiting: map[cid.Cid][]cid.Cid{},
		peers: map[peer.ID]*peerPending{}, byAuthor: map[string]int{}, hopeful: map[string]int{},
	}
}

// has reports whether c waits.
func (p *pendingSet) has(c cid.Cid) bool { _, ok := p.recs[c]; return ok }

// mayWait returns nil if rec, whose past is incomplete, could still become
// valid as far as the node can tell (rule 1), and the unknown-author error
// otherwise. stranger reports whether it may wait only because its kind is
// open to non-members, its author being no key the node knows.
func (in *ingester) mayWait(rec *protocol.Record) (stranger bool, err error) {
	env := &rec.Env
	if _, ok := in.n.state.members.Members().KeyHistory(env.Author); ok {
		return false, nil
	}
	if in.pend.hopeful[string(env.Author)] > 0 {
		return false, nil
	}
	// An applicant whose application is stored: the endorsements that
	// admit it may be in the record's missing past.
	switch seq, _, err := in.n.store.ChainHead(env.Author, protocol.TopicMembers); {
	case err != nil:
		return false, fmt.Errorf("node: store: %w", err)
	case seq > 0:
		return false, nil
	}
	if protocol.OpenToNonMembers(env.Topic, env.Kind) {
		return true, nil
	}
	return false, protocol.Errorf(protocol.ReasonUnknownAuthor,
		"record %s: its past is missing and author %x is no member, applicant or new key this node knows of; %s may only be signed by members",
		rec.CID, env.Author[:8], env.Kind)
}

// hopefulKeys returns the keys a members-topic record could make member
// keys.
func hopefulKeys(rec *protocol.Record) [][]byte {
	switch b := rec.Body.(type) {
	case *protocol.MemberApply:
		return [][]byte{rec.Env.Author}
	case *protocol.MemberRotate:
		return [][]byte{b.NewKey}
	case *protocol.MemberRevoke:
		if len(b.Replacement) > 0 {
			return [][]byte{b.Replacement}
		}
	}
	return nil
}

// add makes req wait for missing, within rules 2 and 3, and returns the
// error to answer it with: missing-deps if it waits, pending-full if not.
func (p *pendingSet) add(req *applyReq, missing []cid.Cid, stranger bool) error {
	rec := req.rec
	n := p.in.n
	from := req.from
	pp := p.peers[from]
	if from != "" && stranger && pp != nil && pp.strangers >= p.lim.PerPeerStrangers {
		// Applications and public comments of keys nobody knows, waiting
		// for a past: an honest peer relays a handful at most.
		n.penalties.strike(from, "stranger-quota")
		return protocol.Errorf(protocol.ReasonPendingFull, "record %s: %d records of non-members from peer %s already wait for their past (quota %d)",
			rec.CID, pp.strangers, from, p.lim.PerPeerStrangers)
	}
	if from != "" && pp != nil && pp.n >= p.lim.PerPeer {
		return protocol.Errorf(protocol.ReasonPendingFull, "record %s: %d records from peer %s already wait for their past (quota %d)",
			rec.CID, pp.n, from, p.lim.PerPeer)
	}
	if c := p.byAuthor[string(rec.Env.Author)]; c >= p.lim.PerAuthor {
		return protocol.Errorf(protocol.ReasonPendingFull, "record %s: %d records of author %x already wait for their past (quota %d)",
			rec.CID, c, rec.Env.Author[:8], p.lim.PerAuthor)
	}
	for len(p.recs) >= p.lim.Records || p.bytes+len(rec.Raw) > p.lim.Bytes {
		if !p.evictFor(from) {
			return protocol.Errorf(protocol.ReasonPendingFull, "record %s: the pending set is full (%d records, %d bytes) and its sender has the most waiting",
				rec.CID, len(p.recs), p.bytes)
		}
	}
	req.missing = len(missing)
	req.waitsOn = missing
	req.stranger = stranger
	p.recs[rec.CID] = req
	p.bytes += len(rec.Raw)
	if pp == nil {
		pp = &peerPending{}
		p.peers[from] = pp
	}
	pp.n++
	if stranger {
		pp.strangers++
	}
	pp.order = append(pp.order, rec.CID)
	p.byAuthor[string(rec.Env.Author)]++
	for _, k := range hopefulKeys(rec) {
		p.hopeful[string(k)]++
	}
	for _, m := range missing {
		p.waiting[m] = append(p.waiting[m], rec.CID)
	}
	// Kept on disk too, so a restart does not lose it (New reads the
	// pending area again), with its receipt time, so a restart does not
	// renew its TTL. A stranger's record is not: its author is no key the
	// node knows, so it may name a past that does not exist (a flood's
	// records never complete), and nothing that may never complete
	// outlives a restart. A real one is offered again by sync, with its
	// past. (One reloaded from an older pending area is removed from it.)
	if stranger {
		if err := n.store.DeletePending(rec.CID); err != nil {
			n.log.Warn("pending record not removed", "cid", rec.CID, "err", err)
		}
	} else if err := n.store.PutPending(rec.CID, rec.Raw, req.received.UnixMilli()); err != nil {
		n.log.Warn("pending record not persisted", "cid", rec.CID, "err", err)
	}
	return protocol.Errorf(protocol.ReasonMissingDeps, "record %s waits for %d parents, first %s", rec.CID, len(missing), missing[0])
}

// evictFor makes room for a record from from (rule 3): it drops the oldest
// record of the peer with the most records waiting, if that peer has at
// least two more than from. It reports whether it dropped one.
func (p *pendingSet) evictFor(from peer.ID) bool {
	mine := 0
	if pp := p.peers[from]; pp != nil {
		mine = pp.n
	}
	var top peer.ID
	most := 0
	for id, pp := range p.peers {
		if pp.n > most {
			top, most = id, pp.n
		}
	}
	if most <= mine+1 {
		// Evicting would only trade the sender's records for its own
		// (or an equal holder's): refuse the newcomer instead.
		return false
	}
	pp := p.peers[top]
	for len(pp.order) > 0 {
		c := pp.order[0]
		pp.order = pp.order[1:]
		if r, ok := p.recs[c]; ok && r.from == top {
			p.drop(c, dropEvicted)
			return true
		}
	}
	return false
}

// remove takes c out of the set and returns its request; nil if c does not
// wait.
func (p *pendingSet) remove(c cid.Cid) *applyReq {
	r, ok := p.recs[c]
	if !ok {
		return nil
	}
	delete(p.recs, c)
	p.bytes -= len(r.rec.Raw)
	if pp := p.peers[r.from]; pp != nil {
		pp.n--
		if r.stranger {
			pp.strangers--
		}
		if pp.n == 0 {
			delete(p.peers, r.from)
		} else if len(pp.order) > 2*pp.n+16 {
			kept := pp.order[:0]
			for _, x := range pp.order {
				if q, ok := p.recs[x]; ok && q.from == r.from {
					kept = append(kept, x)
				}
			}
			pp.order = kept
		}
	}
	a := string(r.rec.Env.Author)
	if p.byAuthor[a]--; p.byAuthor[a] <= 0 {
		delete(p.byAuthor, a)
	}
	for _, k := range hopefulKeys(r.rec) {
		if p.hopeful[string(k)]--; p.hopeful[string(k)] <= 0 {
			delete(p.hopeful, string(k))
		}
	}
	if err := p.in.n.store.DeletePending(c); err != nil {
		p.in.n.log.Warn("pending record not removed", "cid", c, "err", err)
	}
	return r
}

// drop removes c because it will not complete here, unlinking it from the
// parents it waited for, and counts why.
func (p *pendingSet) drop(c cid.Cid, cause string) *applyReq {
	r := p.remove(c)
	if r == nil {
		return nil
	}
	for _, m := range r.waitsOn {
		ws := p.waiting[m]
		for i, w := range ws {
			if w.Equals(c) {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(p.waiting, m)
		} else {
			p.waiting[m] = ws
		}
	}
	p.in.n.metrics.pendingDropped.WithLabelValues(cause).Inc()
	return r
}

// release returns the records that were waiting only for c, removed from
// the set. Their callers have already been answered; these requests carry
// no done channel.
func (p *pendingSet) release(c cid.Cid) []*applyReq {
	var ready []*applyReq
	for _, w := range p.waiting[c] {
		r, ok := p.recs[w]
		if !ok {
			continue
		}
		if r.missing--; r.missing == 0 {
			p.remove(w)
			ready = append(ready, &applyReq{rec: r.rec, src: r.src, from: r.from, received: r.received, forward: r.src == SourceGossip})
		}
	}
	delete(p.waiting, c)
	return ready
}

// expire drops the records that have waited longer than TTL at now (rule
// 4) and penalises their senders.
func (p *pendingSet) expire(now time.Time) {
	cutoff := now.Add(-p.lim.TTL)
	var old []cid.Cid
	for c, r := range p.recs {
		if r.received.Before(cutoff) {
			old = append(old, c)
		}
	}
	n := p.in.n
	bySync := map[peer.ID]int{}
	for _, c := range old {
		r := p.drop(c, dropExpired)
		if r.from == "" {
			continue
		}
		n.penalties.strike(r.from, "pending-expired")
		if r.src == SourceSync {
			bySync[r.from]++
		}
	}
	for id, k := range bySync {
		n.sync.penalise(id, badPendingExpired,
			fmt.Errorf("%d records it served waited %v for a past it never served", k, p.lim.TTL))
	}
	if len(old) > 0 {
		n.log.Info("pending records expired", "records", len(old), "ttl", p.lim.TTL)
	}
}

// pendingSweep is how often the apply loop looks for expired records.
func pendingSweep(ttl time.Duration) time.Duration {
	return min(max(ttl/8, 10*time.Millisecond), 30*time.Second)
}
