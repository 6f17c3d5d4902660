package node

// growStack grows the calling goroutine's stack by 16 KiB at once, while
// little of it is in use, so that what runs next on it does not grow it
// step by step.
//
// gossipsub runs every validation on a goroutine of its own, which starts
// with a small stack (the average of the process's goroutines). Checking a
// record needs more: the CBOR decoder recurses, and the signature check
// keeps its lookup tables on the stack. Each time the stack runs out, Go
// copies it whole into one twice the size, so a record's check copied its
// stack three or four times, each copy larger than the last: 2% of the
// nodes' CPU with 100 nodes at 10 records/s (docs/benchmarks.md, section
// 8, session 7). One growth here, when the stack holds only gossipsub's
// few frames, costs a small copy instead. The checks reach a 32 KiB stack
// at their deepest either way (with 8 KiB here it still grew during the
// checks), so this costs no memory the checks would not take.
// (CockroachDB's growstack package does the same for its storage paths.)
//
//go:noinline
func growStack() {
	var buf [16 << 10]byte
	keepStack(buf[:])
}

// keepStack keeps growStack's buffer from being optimised away; it does not
// let it escape, so the buffer stays on the stack.
//
//go:noinline
func keepStack(b []byte) { _ = b }
