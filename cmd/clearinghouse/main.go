// Command clearinghouse is the clearinghouse node and its tools. All of its
// logic lives in the importable package cli; see there.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/clearinghouse-net/clearinghouse/cmd/clearinghouse/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling so that a
	// second one ends a shutdown that hangs.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
