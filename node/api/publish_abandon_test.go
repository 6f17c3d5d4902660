package api_test

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// TestAbandonedAPIPublishes: HTTP clients that give up on POST /records
// after 0.3-6 ms, while others wait for their answers, never make the node
// sign two records at one seq: its chain on the topic is whole, and no
// equivocation is refused anywhere.
func TestAbandonedAPIPublishes(t *testing.T) {
	ctx := testContext(t)
	net := testnet.New(t, 2, testnet.WithFollow("privacy"))
	if err := net.WaitTopicMesh(ctx, "issue/privacy"); err != nil {
		t.Fatal(err)
	}
	var equivocations atomic.Int64
	for _, nd := range net.Nodes {
		rej, stop := nd.SubscribeRejections()
		t.Cleanup(stop)
		go func() {
			for r := range rej {
				if r.Reason == protocol.ReasonEquivocation {
					equivocations.Add(1)
				}
			}
		}()
	}
	const token = "abandon-token"
	url := serve(t, net.Nodes[0], api.WithToken(token)).URL + api.Prefix + "/records"
	body := publishBody(protocol.KindStatement, "issue/privacy", map[string]any{"title": "t", "text": "x"})
	post := func(c *http.Client) (int, error) {
		req, err := http.NewRequest("POST", url, strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	deadline := time.Now().Add(time.Second)
	var wg sync.WaitGroup
	var abandoned, normal atomic.Int64
	for w := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			for time.Now().Before(deadline) {
				if w%2 == 0 {
					c := &http.Client{Timeout: time.Duration(300+rng.IntN(5700)) * time.Microsecond}
					_, _ = post(c)
					abandoned.Add(1)
					continue
				}
				if status, err := post(http.DefaultClient); err != nil || status != http.StatusCreated {
					t.Errorf("publish: %d %v", status, err)
					return
				}
				normal.Add(1)
			}
		})
	}
	wg.Wait()
	if status, err := post(http.DefaultClient); err != nil || status != http.StatusCreated {
		t.Fatalf("last publish: %d %v", status, err)
	}
	pub := net.PublicKey(0)
	seq, _, err := net.Nodes[0].Store().ChainHead(pub, "issue/privacy")
	if err != nil {
		t.Fatal(err)
	}
	for s := uint64(1); s <= seq; s++ {
		if _, err := net.Nodes[0].Store().ChainAt(pub, "issue/privacy", s); err != nil {
			t.Fatalf("seq %d: %v", s, err)
		}
	}
	t.Logf("%d abandoned and %d normal requests; chain of %d records", abandoned.Load(), normal.Load(), seq)
	if n := equivocations.Load(); n != 0 {
		t.Fatalf("%d equivocations", n)
	}
}
