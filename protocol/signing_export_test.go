package protocol

// SlicedSigningInput exposes the fast path of Record.Verify to tests.
var SlicedSigningInput = slicedSigningInput

// VerifySig exposes the signature rule to tests.
var VerifySig = verifySig
