package protocol

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
)

// Kinds of the members topic (docs/protocol.md, "Membership"). Their body
// Check methods validate shape only; what a record may do given its causal
// past is decided by [CheckMembership] and [DeriveMembers].
const (
	// KindMemberApply is an application for membership, signed by the
	// applicant's key. It is the only members-topic kind a non-member may
	// publish.
	KindMemberApply = "member.apply"
	// KindMemberEndorse is a member's endorsement of an application.
	KindMemberEndorse = "member.endorse"
	// KindMemberRotate replaces the author's key by a new one; it is signed
	// by the old key.
	KindMemberRotate = "member.rotate"
	// KindMemberRevoke is one member's vote to revoke another member's key,
	// optionally naming a replacement key (lost-key recovery).
	KindMemberRevoke = "member.revoke"
	// KindMemberWithdraw is the author's withdrawal from the federation.
	KindMemberWithdraw = "member.withdraw"
	// KindMemberSuspend is one member's vote to suspend another member.
	KindMemberSuspend = "member.suspend"
	// KindMemberEquivocation is evidence that a key signed two different
	// records at the same topic and seq.
	KindMemberEquivocation = "member.equivocation"
)

func init() {
	for _, s := range []KindSpec{
		{Name: KindMemberApply, Topics: ClassMembers, New: func() Body { return new(MemberApply) }},
		{Name: KindMemberEndorse, Topics: ClassMembers, New: func() Body { return new(MemberEndorse) }},
		{Name: KindMemberRotate, Topics: ClassMembers, New: func() Body { return new(MemberRotate) }},
		{Name: KindMemberRevoke, Topics: ClassMembers, New: func() Body { return new(MemberRevoke) }},
		{Name: KindMemberWithdraw, Topics: ClassMembers, New: func() Body { return new(MemberWithdraw) }},
		{Name: KindMemberSuspend, Topics: ClassMembers, New: func() Body { return new(MemberSuspend) }},
		{Name: KindMemberEquivocation, Topics: ClassMembers, New: func() Body { return new(MemberEquivocation) }},
	} {
		register(s)
	}
}

// Text limits of membership bodies, in bytes.
const (
	maxStatementLen = 4000
	maxReasonLen    = 2000
)

// MemberApply is the body of a member.apply record. The applicant is the
// record's author; the group and region must belong to the genesis taxonomy,
// which only the fold can check (not-allowed otherwise).
type MemberApply struct {
	Org       string `cbor:"org"`
	Group     string `cbor:"group"`
	Region    string `cbor:"region"`
	Contact   string `cbor:"contact"`
	Statement string `cbor:"statement"`
}

// Check validates the shape of an application.
func (a *MemberApply) Check() error {
	if err := checkOrg("org", a.Org); err != nil {
		return err
	}
	if !ValidSlug(a.Group) {
		return fmt.Errorf("group: %q is not a valid name (a-z, 0-9, '-')", a.Group)
	}
	if !ValidSlug(a.Region) {
		return fmt.Errorf("region: %q is not a valid name (a-z, 0-9, '-')", a.Region)
	}
	if err := checkText("contact", a.Contact, 0, 300); err != nil {
		return err
	}
	return checkText("statement", a.Statement, 1, maxStatementLen)
}

// MemberEndorse is the body of a member.endorse record. The application
// must also be one of the record's deps.
type MemberEndorse struct {
	Application Link `cbor:"application"`
}

// Check validates the shape of an endorsement.
func (e *MemberEndorse) Check() error {
	if !IsRecordCID(e.Application.Cid) {
		return errors.New("application: not a record CID")
	}
	return nil
}

// MemberRotate is the body of a member.rotate record, signed by the key it
// retires.
type MemberRotate struct {
	NewKey []byte `cbor:"newKey"`
}

// Check validates the shape of a rotation.
func (r *MemberRotate) Check() error {
	return checkKey("newKey", r.NewKey)
}

// MemberRevoke is the body of a member.revoke record: one vote to revoke
// Key. Replacement is empty, or the 32-byte key under which the member
// continues (lost-key recovery).
type MemberRevoke struct {
	Key         []byte `cbor:"key"`
	Reason      string `cbor:"reason"`
	Replacement []byte `cbor:"replacement"`
}

// Check validates the shape of a revocation vote.
func (r *MemberRevoke) Check() error {
	if err := checkKey("key", r.Key); err != nil {
		return err
	}
	if err := checkText("reason", r.Reason, 1, maxReasonLen); err != nil {
		return err
	}
	if len(r.Replacement) == 0 {
		return nil
	}
	if err := checkKey("replacement", r.Replacement); err != nil {
		return err
	}
	if bytes.Equal(r.Replacement, r.Key) {
		return errors.New("replacement: equals the revoked key")
	}
	return nil
}

// MemberWithdraw is the body of a member.withdraw record.
type MemberWithdraw struct {
	Statement string `cbor:"statement"`
}

// Check validates the shape of a withdrawal.
func (w *MemberWithdraw) Check() error {
	return checkText("statement", w.Statement, 0, maxStatementLen)
}

// MemberSuspend is the body of a member.suspend record: one vote to
// suspend the member whose current key is Key.
type MemberSuspend struct {
	Key    []byte `cbor:"key"`
	Reason string `cbor:"reason"`
}

// Check validates the shape of a suspension vote.
func (s *MemberSuspend) Check() error {
	if err := checkKey("key", s.Key); err != nil {
		return err
	}
	return checkText("reason", s.Reason, 1, maxReasonLen)
}

// MemberEquivocation is the body of a member.equivocation record: two full
// signed records by one author, on one network, topic and seq, with
// different CIDs. A holds the one whose CID sorts first by bytes, so that
// a pair has one encoding. Build one with [NewEquivocation].
type MemberEquivocation struct {
	A []byte `cbor:"a"`
	B []byte `cbor:"b"`
}

// Check decodes both records, verifies both signatures and checks that
// they equivocate. It needs nothing but the body, so any node can verify
// the evidence on its own.
func (q *MemberEquivocation) Check() error {
	_, _, err := q.Records()
	return err
}

// Records decodes and verifies the two records of the evidence and checks
// that they equivocate, returning them in body order.
func (q *MemberEquivocation) Records() (a, b *Record, err error) {
	if a, b, err = q.decode(); err != nil {
		return nil, nil, err
	}
	if err := a.Verify(); err != nil {
		return nil, nil, fmt.Errorf("a: %w", err)
	}
	if err := b.Verify(); err != nil {
		return nil, nil, fmt.Errorf("b: %w", err)
	}
	return a, b, nil
}

// decode is Records without the signature checks, for bodies that came
// out of Decode, whose Check already verified them.
func (q *MemberEquivocation) decode() (a, b *Record, err error) {
	if a, err = Decode(q.A); err != nil {
		return nil, nil, fmt.Errorf("a: %w", err)
	}
	if b, err = Decode(q.B); err != nil {
		return nil, nil, fmt.Errorf("b: %w", err)
	}
	if err := equivocation(a, b); err != nil {
		return nil, nil, err
	}
	if strings.Compare(a.CID.KeyString(), b.CID.KeyString()) > 0 {
		return nil, nil, errors.New("a and b must be ordered by CID bytes")
	}
	return a, b, nil
}

// Equivocates reports whether a and b prove that one author signed two
// different records at the same place in its chain: same network, same
// author, same topic, same seq, different CIDs. It does not check the
// signatures.
func Equivocates(a, b *Record) bool {
	return a != nil && b != nil && equivocation(a, b) == nil
}

func equivocation(a, b *Record) error {
	switch {
	case a.CID.Equals(b.CID):
		return errors.New("a and b are the same record")
	case !bytes.Equal(a.Env.Author, b.Env.Author):
		return errors.New("a and b have different authors")
	case !a.Env.Network.Equals(b.Env.Network.Cid):
		return errors.New("a and b belong to different networks")
	case a.Env.Topic != b.Env.Topic:
		return errors.New("a and b are on different topics")
	case a.Env.Seq != b.Env.Seq:
		return errors.New("a and b have different seq")
	}
	return nil
}

// NewEquivocation returns the evidence body proving that x and y
// equivocate, in canonical order. x and y must be decoded records whose
// signatures verify; the caller signs the evidence record with its own key
// on the members topic. The evidence must fit in [MaxBodySize].
func NewEquivocation(x, y *Record) (*MemberEquivocation, error) {
	if x == nil || y == nil {
		return nil, errors.New("protocol: equivocation: nil record")
	}
	if strings.Compare(x.CID.KeyString(), y.CID.KeyString()) > 0 {
		x, y = y, x
	}
	q := &MemberEquivocation{A: x.Raw, B: y.Raw}
	if err := q.Check(); err != nil {
		return nil, fmt.Errorf("protocol: equivocation: %w", err)
	}
	return q, nil
}

func checkKey(field string, key []byte) error {
	if len(key) != ed25519.PublicKeySize {
		return fmt.Errorf("%s: %d bytes, want a %d-byte ed25519 key", field, len(key), ed25519.PublicKeySize)
	}
	if smallOrder(key) {
		return fmt.Errorf("%s: %x is a point of small order: anyone can sign for it", field, key[:8])
	}
	return nil
}
