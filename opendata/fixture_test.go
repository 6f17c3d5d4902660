package opendata_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

const slug = "privacy"

// fixture is a three-member testnet federation that ran a full process,
// shared by the tests of this package (it takes a few seconds to build).
type fixture struct {
	net *testnet.Network
	fp  *testnet.FullProcess
	api *httptest.Server // node 0's API
	car []byte           // node 0's whole-federation CARv1, from the API
	err error
}

var (
	fixOnce sync.Once
	fix     fixture
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fix.api != nil {
		fix.api.Close()
	}
	if fix.net != nil {
		_ = fix.net.Close()
	}
	os.Exit(code)
}

// federation returns the shared fixture, building it on first use.
func federation(t *testing.T) *fixture {
	t.Helper()
	fixOnce.Do(func() { fix.err = buildFixture() })
	if fix.err != nil {
		t.Fatalf("fixture: %v", fix.err)
	}
	return &fix
}

func buildFixture() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := testnet.NewClock(t0)
	groups := []string{"government", "civil-society", "private-sector"}
	regions := []string{"africa", "asia-pacific", "western-europe-others"}
	net, err := testnet.Start(ctx, 3,
		testnet.WithFollow(slug),
		testnet.WithAffiliation(func(i int) (string, string) { return groups[i], regions[i] }),
		testnet.WithNodeOptions(func(int) []node.Option { return []node.Option{node.WithClock(clock.Now)} }))
	if err != nil {
		return err
	}
	fix.net = net
	if fix.fp, err = net.RunFullProcess(ctx, clock, t0, slug); err != nil {
		return err
	}
	srv, err := api.New(net.Nodes[0], api.WithToken("t"))
	if err != nil {
		return err
	}
	fix.api = httptest.NewServer(srv.Handler())
	fix.car, err = get(ctx, fix.api.URL+api.Prefix+"/export/car")
	return err
}

// get returns the body of a GET that must answer 200.
func get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{resp.StatusCode, b.String()}
	}
	return b.Bytes(), nil
}

type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return http.StatusText(e.code) + ": " + e.body }

// observer starts a fresh in-memory observer of the fixture's federation,
// connected to no one.
func observer(t *testing.T, f *fixture) *node.Node {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(context.Background(), node.WithIdentity(key), node.WithInMemory(),
		node.WithGenesis(f.net.Genesis), node.WithObserver(true),
		node.WithListenAddrs([]string{"/ip4/127.0.0.1/tcp/0"}), node.WithSyncInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
