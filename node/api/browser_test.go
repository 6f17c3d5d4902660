package api_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/clearinghouse-net/clearinghouse/node/api"
)

// chromium returns the path of a Chromium or Chrome binary. Without one
// the browser tests fail in CI (CI=true) and are skipped elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH: the browser tests need it in CI (.ci/run installs Debian's chromium)")
	}
	t.Skip("no chromium on PATH: skipping the browser tests (apt-get install chromium)")
	return ""
}

// newChrome starts a headless browser for the test and returns the
// context of its first tab.
func newChrome(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(testContext(t), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatal(err)
	}
	return ctx
}

// pageHas waits until the page's text contains s.
func pageHas(s string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](`document.body && document.body.innerText.includes(`+jsString(s)+`)`,
		chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))
}

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// TestBrowser drives headless Chromium against an in-process testnet with
// the demo data: the issue list, a process and a proposal's clauses; a
// member's feedback appears on another member's open page through gossip
// and the event stream without a reload; a public comment posted on an
// observer's page appears on a member's page marked public; an observer
// has no member form and answers writes with 404 or 405.
func TestBrowser(t *testing.T) {
	ctx := newChrome(t)
	net, d, clock := demoNet(t)
	member := serve(t, net.Nodes[0], api.WithToken(token), api.WithWebClock(clock.Now))
	other := serve(t, net.Nodes[3], api.WithToken(token), api.WithWebClock(clock.Now))
	observer := serve(t, net.Nodes[5], api.WithWebClock(clock.Now))
	proc := "/processes/" + d.Process.String()
	v2 := d.V2.String()

	// Reading: the issue list, a process, a proposal by clause, by
	// following the links.
	open := func(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		resp, err := chromedp.RunResponse(ctx, steps...)
		if err != nil || resp.Status != 200 {
			t.Fatalf("%s: %v %v", what, resp, err)
		}
	}
	open(ctx, "the issue list", chromedp.Navigate(member.URL+"/"))
	open(ctx, "the issue", chromedp.Click(chromedp.CSS(`a[href="/issues/privacy"]`)))
	open(ctx, "the process", chromedp.Click(chromedp.CSS(`a[href="`+proc+`"]`)))
	if err := chromedp.Do(ctx,
		pageHas("Agree on a global baseline"),
		chromedp.WaitVisible(chromedp.CSS(`#v-`+v2[len(v2)-8:]+`-4`)),
	); err != nil {
		t.Fatalf("reading: %v", err)
	}
	clause, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#v-`+v2[len(v2)-8:]+`-4`)))
	if err != nil || !strings.Contains(clause, "names a representative") {
		t.Fatalf("clause 4 of version 2: %q %v", clause, err)
	}

	// A second tab on another member's process page, live.
	tab2, cancel := chromedp.NewContext(ctx)
	defer cancel()
	if err := chromedp.Do(tab2,
		chromedp.Navigate(other.URL+proc),
		chromedp.WaitVisible(chromedp.CSS(`main[data-live-state="open"]`)),
		chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`),
	); err != nil {
		t.Fatalf("live page: %v", err)
	}

	// Sign in on the first member and give feedback from the page.
	const reason = "Representatives need a budget of their own."
	tail := v2[len(v2)-8:]
	open(ctx, "sign-in page", chromedp.Navigate(member.URL+"/login"))
	open(ctx, "signing in", chromedp.SetValue(chromedp.CSS(`#token`), token), chromedp.Submit(chromedp.CSS(`#token`)))
	open(ctx, "the process, signed in", chromedp.Navigate(member.URL+proc))
	if err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("#v-`+tail+` details").forEach(function (d) { d.open = true })`),
		chromedp.SetValue(chromedp.CSS(`#st-`+tail), "concern"),
		chromedp.SetValue(chromedp.CSS(`#cl-`+tail), "4"),
		chromedp.SetValue(chromedp.CSS(`#re-`+tail), reason),
	); err != nil {
		t.Fatalf("filling the feedback form: %v", err)
	}
	open(ctx, "giving feedback", chromedp.Submit(chromedp.CSS(`#re-`+tail)))
	if err := chromedp.Do(ctx, pageHas("Published process.feedback."), pageHas(reason)); err != nil {
		t.Fatalf("feedback from the page: %v", err)
	}
	// The other member's open page shows it, without a reload.
	if err := chromedp.Do(tab2, pageHas(reason)); err != nil {
		t.Fatalf("live update: %v", err)
	}
	if ok, err := chromedp.Run(tab2, chromedp.Evaluate[bool](`window.notReloaded === true`)); err != nil || !ok {
		t.Fatalf("the live page reloaded: %v %v", ok, err)
	}

	// The public: a comment on the observer's page, shown on the member's
	// open page, marked public.
	const comment = "Please publish the list of representatives."
	clock.Set(d.Now.Add(time.Minute))
	open(ctx, "the observer's process page", chromedp.Navigate(observer.URL+proc))
	open(ctx, "posting a public comment",
		chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("details").forEach(function (d) { d.open = true })`),
		chromedp.SetValue(chromedp.CSS(`#pub-proposal`), v2),
		chromedp.SetValue(chromedp.CSS(`#pub-name`), "Grace"),
		chromedp.SetValue(chromedp.CSS(`#pub-text`), comment),
		chromedp.Submit(chromedp.CSS(`#pub-text`)))
	if err := chromedp.Do(ctx, pageHas("Published public.comment.")); err != nil {
		t.Fatalf("public comment: %v", err)
	}
	if err := chromedp.Do(tab2, pageHas(comment)); err != nil {
		t.Fatalf("the public comment on the member's page: %v", err)
	}
	marked, err := chromedp.Run(tab2, chromedp.Evaluate[bool](`Array.from(document.querySelectorAll("#public article")).some(function (a) {
		return a.innerText.includes(`+jsString(comment)+`) && a.querySelector(".badge.public") !== null })`))
	if err != nil || !marked {
		t.Fatalf("the public comment is not marked public: %v %v", marked, err)
	}

	// At 390 px no page is wider than the screen (tables become cards or
	// scroll inside their region); every page has one h1, a language,
	// and a label for every visible form field.
	for _, path := range []string{"/", "/issues/privacy", proc, "/records/" + d.Answered.String(), "/federation"} {
		open(ctx, "at 390 px: "+path, chromedp.EmulateViewport(390, 800), chromedp.Navigate(member.URL+path))
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("details").forEach(function (d) { d.open = true })`)); err != nil {
			t.Fatal(err)
		}
		problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(function () {
			var out = [];
			if (document.documentElement.scrollWidth > window.innerWidth) out.push("page is " + document.documentElement.scrollWidth + " px wide");
			if (document.querySelectorAll("h1").length !== 1) out.push("h1 count " + document.querySelectorAll("h1").length);
			if (!document.documentElement.lang) out.push("no lang");
			document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(function (el) {
				if (!el.labels || el.labels.length === 0) out.push("unlabelled " + el.outerHTML.slice(0, 80));
			});
			return out;
		})()`))
		if err != nil || len(problems) > 0 {
			t.Fatalf("%s at 390 px: %v %v", path, problems, err)
		}
	}

	// The observer: no member form, no sign-in, writes are 404 or 405.
	open(ctx, "the observer's process page again", chromedp.Navigate(observer.URL+proc))
	forms, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("form:not(.pub)").length + document.querySelectorAll('a[href="/login"]').length`))
	if err != nil || forms != 0 {
		t.Fatalf("the observer's page has %d member forms or sign-in links (%v)", forms, err)
	}
	statuses, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`Promise.all(["/login", "`+proc+`/act/feedback", "`+proc+`/act/endorse", "/public/x/respond", "/api/v1/records"].map(function (p) {
		return fetch(p, {method: "POST", body: new URLSearchParams({proposal: "`+v2+`"})}).then(function (r) { return r.status })
	}))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range statuses[:4] {
		if s != 404 && s != 405 {
			t.Fatalf("observer write route %d answered %d, want 404 or 405", i, s)
		}
	}
	if statuses[4] != 403 { // the JSON API's documented observer answer
		t.Fatalf("observer POST /api/v1/records: %d", statuses[4])
	}
}
