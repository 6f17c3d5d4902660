package protocol

import "time"

// KindCheckpoint is a member node's witness of an issue topic: its deps are
// the topic heads its author holds and its claimed time is the author's
// clock. A record's public time is the earliest time by which checkpoints
// of members of at least the genesis witness quorum of distinct
// stakeholder groups have it in their causal past (docs/protocol.md,
// "Witnessed time"); notice periods and comment windows are measured on
// public time, so a signer cannot backdate what it publishes.
const KindCheckpoint = "checkpoint"

// MinCheckpointInterval is the least time between two checkpoints of one
// author on one topic: a checkpoint claiming less after the author's
// previous one is not allowed. Nodes publish far less often (see
// node.WithCheckpointInterval).
const MinCheckpointInterval = time.Minute

// DefaultWitnessQuorum is the witness quorum of a genesis whose rules set
// none: checkpoints of members of two distinct groups make a time public.
const DefaultWitnessQuorum = 2

func init() {
	register(KindSpec{Name: KindCheckpoint, Topics: ClassIssue, New: func() Body { return new(Checkpoint) }})
}

// Checkpoint is the body of a checkpoint record. It is empty: what it
// witnesses is its deps, when is its claimed time.
type Checkpoint struct{}

// Check validates a checkpoint body; an empty map is the only one.
func (*Checkpoint) Check() error { return nil }

// Quorum returns the witness quorum of the rules: WitnessQuorum, or
// DefaultWitnessQuorum when it is 0.
func (r Rules) Quorum() int {
	if r.WitnessQuorum == 0 {
		return DefaultWitnessQuorum
	}
	return r.WitnessQuorum
}
