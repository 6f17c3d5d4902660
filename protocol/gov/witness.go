package gov

import (
	"cmp"
	"slices"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// This file holds witnessed time (docs/protocol.md, "Witnessed time"). A
// record's claimed time is whatever its signer wrote. Member nodes publish
// checkpoints: records whose deps are the topic heads they hold and whose
// claimed time is their clock. A record's public time is the earliest
// time by which checkpoints of members of at least the genesis witness
// quorum of distinct stakeholder groups have it in their causal past: to
// make a record look older than it is, members of that many groups must
// lie together. Notice periods, comment windows and "filed in time" are
// measured on public time by the effects (effect.go) and the audit.

// checkCheckpoint checks a checkpoint: signed by a member, claiming at
// least MinCheckpointInterval after the author's previous checkpoint on
// the topic (in its chain), and witnessing something new since then: a
// record other than a checkpoint that the previous one did not cover.
func (is *Issue) checkCheckpoint(pd *pending) error {
	r := pd.r
	m, ok := pd.roster.Lookup(r.Env.Author)
	if !ok {
		return protocol.Errorf(protocol.ReasonNotMember, "author %x of %s is not a member in its causal past", r.Env.Author[:8], r.Env.Kind)
	}
	pd.member = m
	if r.Env.Prev == nil {
		return nil
	}
	pn, ok := is.lookup(r.Env.Prev.Cid)
	if !ok || pn.cp < 0 {
		return nil
	}
	last := is.nodes[pn.cp]
	if next := last.time() + protocol.MinCheckpointInterval.Milliseconds(); r.Env.Time < next {
		return notAllowed("the author's previous checkpoint %s claims %s; the next may claim no earlier than %s",
			last.rec.CID, fmtTime(last.time()), fmtTime(next))
	}
	covered := is.pastOf(last.links)
	covered.set(last.at)
	seen := newBitset(len(is.nodes))
	stack := append([]int32(nil), pd.links...)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if covered.has(i) || seen.has(i) {
			continue
		}
		seen.set(i)
		n := is.nodes[i]
		if n.rec.Env.Kind != protocol.KindCheckpoint {
			return nil
		}
		stack = append(stack, n.links...)
	}
	return notAllowed("the checkpoint witnesses nothing but checkpoints since the author's previous checkpoint %s", last.rec.CID)
}

// witnessed returns the public times of the records (see publicTimes)
// when the topic is witnessed, that is when it holds checkpoints of
// members of at least the quorum of distinct groups; otherwise nil, and
// time rules fall back to claimed times (a topic that no member node
// witnesses, such as one made by software before checkpoints, has nothing
// else). Once witnesses exist, a record they have not covered yet has no
// public time and no effect that depends on time.
func (is *Issue) witnessed() []int64 {
	groups := map[string]bool{}
	for _, i := range is.cps {
		groups[is.nodes[i].member.Group] = true
	}
	if len(groups) < is.rules.Quorum() {
		return nil
	}
	return is.publicTimes(nil)
}

// publicTimes returns the public time of every applied record (by node
// index; 0 when not yet witnessed by the quorum) given the checkpoints in
// u (nil: every checkpoint applied). Checkpoints are taken in claimed-time
// order; a record's public time is the time of the checkpoint that first
// brings the number of groups covering it to the quorum. A checkpoint's
// past can stop at records its group already covers, because an earlier
// checkpoint that covers a record covers its past too.
func (is *Issue) publicTimes(u bitset) []int64 {
	pub := make([]int64, len(is.nodes))
	var cps []*node
	for _, i := range is.cps {
		if n := is.nodes[i]; u == nil || u.has(n.at) {
			cps = append(cps, n)
		}
	}
	if len(cps) == 0 {
		return pub
	}
	slices.SortFunc(cps, func(a, b *node) int { return cmp.Or(cmp.Compare(a.time(), b.time()), cidCompare(a.rec.CID, b.rec.CID)) })
	q := is.rules.Quorum()
	count := make([]uint8, len(is.nodes))
	covered := map[string]bitset{}
	for _, c := range cps {
		g := c.member.Group
		cov := covered[g]
		if cov == nil {
			cov = newBitset(len(is.nodes))
			covered[g] = cov
		}
		stack := append([]int32(nil), c.links...)
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if cov.has(i) {
				continue
			}
			cov.set(i)
			if count[i]++; int(count[i]) == q {
				pub[i] = c.time()
			}
			stack = append(stack, is.nodes[i].links...)
		}
	}
	return pub
}

// Due reports whether a member of group should checkpoint the topic at
// now (unix ms): the topic holds a record, other than a checkpoint, that
// no checkpoint of a member of group covers, and no member of group
// published a checkpoint claiming a time within interval (ms) before now.
// A node publishes only then, so a topic costs at most one checkpoint per
// group and interval however many members follow it, and a quiet topic
// costs nothing.
func (is *Issue) Due(group string, now, interval int64) bool {
	cov := newBitset(len(is.nodes))
	var stack []int32
	for _, i := range is.cps {
		c := is.nodes[i]
		if c.member.Group != group {
			continue
		}
		if c.time() > now-interval {
			return false
		}
		stack = append(stack, c.links...)
		cov.set(c.at)
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if cov.has(i) {
			continue
		}
		cov.set(i)
		stack = append(stack, is.nodes[i].links...)
	}
	for _, n := range is.nodes {
		if !cov.has(n.at) && n.rec.Env.Kind != protocol.KindCheckpoint {
			return true
		}
	}
	return false
}
