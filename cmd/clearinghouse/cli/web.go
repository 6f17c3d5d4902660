package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/node"
	"github.com/clearinghouse-net/clearinghouse/node/api"
	"github.com/clearinghouse-net/clearinghouse/protocol"
	"github.com/clearinghouse-net/clearinghouse/testnet"
)

// screenshotWidths are the viewport widths of the screenshots: a desktop
// and a phone.
var screenshotWidths = []int64{1280, 390}

func newWebCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "web",
		Short: "Tools for the web app every node serves",
		Long: `Every node serves a web app on its API address: the federation, the issues,
each process with its charter, proposals by clause, feedback, objections,
endorsements and audit, record pages, sign-in and forms for members, and public
comments (docs/api.md, "Web app"). These commands help with it.`,
		Example: "  clearinghouse web screenshots --out /tmp/shots",
		Args:    noArgs,
	}
	cmd.AddCommand(newWebScreenshots(a))
	return cmd
}

func newWebScreenshots(a *app) *cobra.Command {
	var out, chromium string
	cmd := &cobra.Command{
		Use:   "screenshots --out DIR",
		Short: "Screenshot the main pages with demo data, at 1280 and 390 px",
		Long: `screenshots starts an in-process testnet of five members and an observer,
publishes the demo consultation (testtn.PublishDemo) and a public comment,
and saves full-page PNG screenshots of the issue list, an issue, a process, a
record and the federation page of a member node, at 1280 and 390 px wide, as
DIR/<page>-<width>.png. It drives a headless Chromium (found on PATH, or
--chromium).`,
		Example: "  clearinghouse web screenshots --out /tmp/shots\n  clearinghouse web screenshots --out docs/screenshots --chromium /usr/bin/chromium",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return &usageError{errors.New("--out is required")}
			}
			return webScreenshots(cmd.Context(), a, out, chromium)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write the PNG files to (created if missing)")
	cmd.Flags().StringVar(&chromium, "chromium", "", "path of the Chromium or Chrome binary (default: found on PATH)")
	return cmd
}

func webScreenshots(ctx context.Context, a *app, out, chromium string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("web screenshots: %w", err)
	}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := testnet.NewClock(t0)
	tn, err := testnet.Start(ctx, 6, testnet.WithObservers(1), testnet.WithFollow("privacy"),
		testnet.WithNodeOptions(func(int) []node.Option { return []node.Option{node.WithClock(clock.Now)} }))
	if err != nil {
		return fmt.Errorf("web screenshots: %w", err)
	}
	defer tn.Close()
	for _, tp := range []string{protocol.TopicIndex, protocol.IssueTopic("privacy")} {
		if err := tn.WaitTopicMesh(ctx, tp); err != nil {
			return fmt.Errorf("web screenshots: %w", err)
		}
	}
	d, err := tn.PublishDemo(ctx, clock, t0)
	if err != nil {
		return fmt.Errorf("web screenshots: %w", err)
	}
	v2 := protocol.LinkTo(d.V2)
	c, err := tn.Nodes[5].PublishComment(ctx, d.Slug, &protocol.PublicComment{Process: &protocol.Link{Cid: d.Process},
		Proposal: &v2, Clause: "4", Name: "Grace", Person: make([]byte, 16),
		Text: "Please publish the list of representatives, with how to reach them."})
	if err != nil {
		return fmt.Errorf("web screenshots: %w", err)
	}
	if err := tn.Nodes[0].WaitRecords(ctx, c.CID); err != nil {
		return fmt.Errorf("web screenshots: %w", err)
	}

	srv, err := api.New(tn.Nodes[0], api.WithToken("screenshots"), api.WithWebClock(clock.Now))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("web screenshots: %w", err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, l) }()
	defer func() { stop(); <-served }()
	base := "http://" + l.Addr().String()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.NoSandbox, chromedp.DisableGPU)
	if chromium != "" {
		opts = append(opts, chromedp.ExecPath(chromium))
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	pages := []struct{ name, path string }{
		{"issues", "/"},
		{"issue", "/issues/" + d.Slug},
		{"process", "/processes/" + d.Process.String()},
		{"record", "/records/" + d.V2.String()},
		{"federation", "/federation"},
	}
	for _, w := range screenshotWidths {
		for _, p := range pages {
			png, err := screenshot(bctx, base+p.path, w)
			if err != nil {
				return fmt.Errorf("web screenshots: %s at %d px: %w", p.path, w, err)
			}
			file := filepath.Join(out, fmt.Sprintf("%s-%d.png", p.name, w))
			if err := os.WriteFile(file, png, 0o644); err != nil {
				return fmt.Errorf("web screenshots: %w", err)
			}
			fmt.Fprintln(a.stdout, file)
		}
	}
	// The top of the process page, as a desktop shows it first (README).
	if _, err := chromedp.RunResponse(bctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(base+pages[2].path)); err != nil {
		return fmt.Errorf("web screenshots: %w", err)
	}
	top, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		return fmt.Errorf("web screenshots: %w", err)
	}
	file := filepath.Join(out, "process-1280-top.png")
	if err := os.WriteFile(file, top, 0o644); err != nil {
		return fmt.Errorf("web screenshots: %w", err)
	}
	fmt.Fprintln(a.stdout, file)
	return nil
}

// screenshot loads url in a viewport w px wide and returns a full-page PNG.
func screenshot(ctx context.Context, url string, w int64) ([]byte, error) {
	if _, err := chromedp.RunResponse(ctx, chromedp.EmulateViewport(w, 800), chromedp.Navigate(url)); err != nil {
		return nil, err
	}
	return chromedp.Run(ctx, chromedp.FullScreenshot(100))
}
