package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is the clearinghouse version. Release builds set it with
//
//	go build -ldflags "-X github.com/clearinghouse-net/clearinghouse/cmd/clearinghouse/cli.Version=1.2.3"
var Version = "0.1.0-dev"

// versionLine returns "clearinghouse VERSION (GO VERSION[, REVISION])",
// where REVISION is the VCS revision the binary was built from, if known,
// shortened to 12 characters and marked "-dirty" when the tree had
// uncommitted changes.
func versionLine() string {
	_, goVersion, rev := versionInfo()
	if rev == "" {
		return fmt.Sprintf("clearinghouse %s (%s)", Version, goVersion)
	}
	return fmt.Sprintf("clearinghouse %s (%s, %s)", Version, goVersion, rev)
}

// versionInfo returns the version, the Go version and the revision ("" if
// unknown) of versionLine.
func versionInfo() (version, goVersion, rev string) {
	goVersion = runtime.Version()
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && modified {
			rev += "-dirty"
		}
	}
	return Version, goVersion, rev
}

func newVersionCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Long: `Print the clearinghouse version, the Go version it was built with and, when
known, the source revision it was built from.`,
		Example: `  clearinghouse version`,
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			if a.jsonOutput() {
				v, goVersion, rev := versionInfo()
				return printValue(a.stdout, struct {
					Version  string `json:"version"`
					Go       string `json:"go"`
					Revision string `json:"revision"`
				}{v, goVersion, rev})
			}
			_, err := fmt.Fprintln(a.stdout, versionLine())
			return err
		},
	}
}
