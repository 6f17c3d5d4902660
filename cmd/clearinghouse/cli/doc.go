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
// Output conventions: results go to stdout; errors go to stderr as one line
// "clearinghouse: MESSAGE" each, with exit status 1; the usage text is shown
// only when the command line itself is wrong (an unknown flag or command, a
// missing or extra argument). The running node logs to stderr with log/slog.
package cli
