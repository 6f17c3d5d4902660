package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestSyncFrameRoundTrip(t *testing.T) {
	reqs := []SyncRequest{
		{Type: SyncReconcile, Topic: "index", Ranges: []Range{{Upper: Bound{Time: Infinity.Time, ID: []byte{}}, Mode: ModeFingerprint, FP: make([]byte, 16), IDs: [][]byte{}}}, CIDs: [][]byte{}, Author: []byte{}},
		{Type: SyncFetch, Topic: "members", Ranges: []Range{}, CIDs: [][]byte{{1, 2, 3}}, Author: []byte{}},
		{Type: SyncChainHead, Topic: "issue/x", Ranges: []Range{}, CIDs: [][]byte{}, Author: bytes.Repeat([]byte{7}, 32)},
	}
	var buf bytes.Buffer
	for _, r := range reqs {
		if err := WriteFrame(&buf, r); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(&buf)
	for i, want := range reqs {
		var got SyncRequest
		if err := ReadFrame(br, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("request %d: got %+v, want %+v", i, got, want)
		}
	}
}

func TestSyncFrameLimits(t *testing.T) {
	var buf bytes.Buffer
	buf.Write([]byte{0xff, 0xff, 0xff, 0x7f}) // a length above SyncMaxFrame
	var r SyncRequest
	if err := ReadFrame(bufio.NewReader(&buf), &r); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
	// Unknown fields are refused.
	body, _ := Marshal(map[string]any{"type": 1, "bogus": 2})
	if err := Unmarshal(body, &r); err == nil {
		t.Fatal("unknown field accepted")
	}
}

func FuzzSyncUnmarshal(f *testing.F) {
	b, _ := Marshal(SyncResponse{Type: SyncFetch, Records: [][]byte{{1}}, Served: 1})
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var r SyncResponse
		_ = Unmarshal(data, &r)
	})
}
