// Package gov holds the governance rules of clearinghouse issues and
// processes (DESIGN.md section 6) and the deterministic state and audit they
// derive: which issue slugs are open ([Index]), which process records are
// allowed by their causal past, which stage each process is in, which
// proposals are adopted, and the P1-P4 audit of each process ([Report]).
//
// Like its parent package it is pure: no I/O, no goroutines, no clock. A node
// feeds it records that have already passed [protocol.Validate] and whose
// whole causal past it holds, in causal order, through [Issue.Apply] and
// [Index.Apply]; a node that starts from its store, or a test, calls
// [Derive] or [DeriveIndex] with any set of records in any order. Both give
// the same state, because every verdict depends only on a record and its
// causal past, and the state is a function of the set of valid records.
//
// Membership comes in through the small [Roster] interface, so this package
// does not depend on how admissions are decided: the caller passes, with each
// record, the roster in force in that record's causal past.
//
// The rules, the adoption rule and the audit's JSON schema are specified in
// docs/protocol.md, section "Issues, processes and decisions".
package gov
