// Package cli is the clearinghouse command line: the commands of the one
// binary, built with cobra. The binary's main only calls [Main] with its
// arguments, its standard streams and a context cancelled on SIGINT or
// SIGTERM, so that every command can be run and tested in-process.
//
// Commands read the data directory through the config package (which finds
// it from --data-dir, $CLEARINGHOUSE_DIR or ~/.clearinghouse) and start a
// node through the node package; they hold no logic of their own beyond
// turning flags and files into those packages' inputs and printing results.
//
// Output conventions: results go to stdout, through the one output style
// of output.go (tables with headers, human durations and times, plurals;
// --json or --output json for JSON with RFC 3339 times; colour only on a
// terminal and never with NO_COLOR); errors go to stderr as one line
// "clearinghouse: MESSAGE" each, with exit status 1; the usage text is
// shown, with exit status 2, only when the command line itself is wrong
// (an unknown flag or command, a missing or extra argument). The running
// node logs to stderr with log/slog.
//
// Client commands act for the node of their data directory: before they
// send anything that comes from it (its token) or to the address it names
// (api.listen), they check that the node answering has the directory's
// peer id (client.go).
package cli
