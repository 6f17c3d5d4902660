package protocol

import "github.com/ipfs/go-cid"

// BodyRefs returns the records a body links that must also be among its
// record's deps: a process record's process and the records it answers
// (ProcessRefs), a member.endorse's application. A publisher adds them to
// the deps it builds; the rules refuse a record without them (bad-links).
func BodyRefs(body Body) []cid.Cid {
	if process, refs, ok := ProcessRefs(body); ok {
		var out []cid.Cid
		if process.Defined() {
			out = append(out, process)
		}
		return append(out, refs...)
	}
	if e, ok := body.(*MemberEndorse); ok {
		return []cid.Cid{e.Application.Cid}
	}
	return nil
}
