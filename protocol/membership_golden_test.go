package protocol_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// TestMembershipGolden runs the membership scenarios in
// testdata/membership/*.txt and compares each transcript with its .golden
// file; regenerate with
//
//	go test ./protocol -run TestMembershipGolden -rewrite
//
// One command a line ('#' starts a comment):
//
//	founder NAME GROUP REGION        a founding member (organisation NAME)
//	apply NAME GROUP REGION [ORG]    an application (organisation ORG, default NAME)
//	endorse BY NAME                  BY endorses NAME's application
//	suspend BY NAME                  BY votes to suspend NAME
//	members                          the current and former members
//
// Every record links every record before it, so each sees the whole
// history. Each record line is followed by its verdict in the membership
// derived from every record so far.
func TestMembershipGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/membership/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := runMembershipScript(t, string(src))
			golden := strings.TrimSuffix(file, ".txt") + ".golden"
			if *rewrite {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -rewrite to create it)", err)
			}
			if got != string(want) {
				t.Fatalf("transcript differs from %s (run with -rewrite to accept):\n%s", golden, got)
			}
		})
	}
}

func partyKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("membership scenario party " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func runMembershipScript(t *testing.T, src string) string {
	var out strings.Builder
	var founders []founder
	orgs := map[string]string{} // founder key -> org
	var f *fed
	apps := map[string]*protocol.Record{}
	names := map[string]string{} // public key -> name
	start := func() {
		if f != nil {
			return
		}
		f = newFed(t, protocol.DefaultRules, founders...)
		// newFed names founders "Founder A", ...: rebuild with the scenario's
		// organisation names.
		var ms []protocol.Member
		for _, fo := range founders {
			ms = append(ms, protocol.Member{Key: pub(fo.key), Org: orgs[string(pub(fo.key))], Group: fo.group, Region: fo.region})
		}
		g := protocol.NewGenesis("Membership scenario", ms, vectorTime)
		for _, fo := range founders {
			if err := g.Sign(fo.key); err != nil {
				t.Fatal(err)
			}
		}
		if err := g.Verify(); err != nil {
			t.Fatal(err)
		}
		f.g = g
		f.net, _ = g.NetworkID()
	}
	publish := func(key ed25519.PrivateKey, kind string, body protocol.Body, extra ...*protocol.Record) {
		deps := append(slices.Clone(f.all), extra...)
		if len(deps) > protocol.MaxDeps {
			deps = deps[len(deps)-protocol.MaxDeps:]
		}
		r := f.publish(key, protocol.TopicMembers, kind, body, deps...)
		_, err := f.derive().Verdict(r.CID)
		v := "ok"
		if err != nil {
			v = "refused " + strings.TrimPrefix(err.Error(), "protocol: ")
		}
		out.WriteString("  -> " + v + "\n")
		if kind == protocol.KindMemberApply && err == nil {
			apps[names[string(r.Env.Author)]] = r
		}
	}
	for i, line := range strings.Split(strings.TrimRight(src, "\n"), "\n") {
		out.WriteString(line + "\n")
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		w := strings.Fields(line)
		fail := func(format string, args ...any) { t.Fatalf("line %d: %s: %s", i+1, line, fmt.Sprintf(format, args...)) }
		switch w[0] {
		case "founder":
			if len(w) != 4 || f != nil {
				fail("want: founder NAME GROUP REGION, before any record")
			}
			k := partyKey(w[1])
			names[string(pub(k))] = w[1]
			orgs[string(pub(k))] = w[1]
			founders = append(founders, founder{k, w[2], w[3]})
		case "apply":
			if len(w) < 4 {
				fail("want: apply NAME GROUP REGION [ORG]")
			}
			start()
			k := partyKey(w[1])
			names[string(pub(k))] = w[1]
			org := w[1]
			if len(w) > 4 {
				u, err := strconv.Unquote(strings.Join(w[4:], " "))
				if err != nil {
					fail("ORG: %v", err)
				}
				org = u
			}
			body := &protocol.MemberApply{Org: org, Group: w[2], Region: w[3], Statement: "We would like to join."}
			if err := body.Check(); err != nil {
				out.WriteString("  -> refused bad-body: " + err.Error() + "\n")
				continue
			}
			publish(k, protocol.KindMemberApply, body)
		case "endorse", "suspend":
			if len(w) != 3 {
				fail("want: %s BY NAME", w[0])
			}
			start()
			by := partyKey(w[1])
			if w[0] == "endorse" {
				app, ok := apps[w[2]]
				if !ok {
					fail("no valid application by %s", w[2])
				}
				publish(by, protocol.KindMemberEndorse, &protocol.MemberEndorse{Application: protocol.LinkTo(app.CID)}, app)
			} else {
				publish(by, protocol.KindMemberSuspend, &protocol.MemberSuspend{Key: pub(partyKey(w[2])), Reason: "They objected."})
			}
		case "members":
			start()
			set := f.derive()
			line := func(label string, ms []protocol.MemberInfo) {
				var xs []string
				for _, m := range ms {
					xs = append(xs, fmt.Sprintf("%s (%s %q)", names[string(m.Keys[0].Key)], m.Group, m.Org))
				}
				slices.Sort(xs)
				if len(xs) == 0 {
					xs = []string{"none"}
				}
				fmt.Fprintf(&out, "  %s: %s\n", label, strings.Join(xs, ", "))
			}
			line("members", set.Members())
			line("former", set.Former())
		default:
			fail("unknown command")
		}
	}
	return out.String()
}
