// Package config is everything a node reads from its data directory before
// it starts: the configuration file (config.toml) with its defaults and
// validation, the node's identity key (identity.key), the HTTP API bearer
// token (api.token), and the paths of the files other packages own (the
// federation genesis and the store).
//
// The layout of a data directory is:
//
//	config.toml    the configuration, TOML; see [Config] and [WriteDefault]
//	identity.key   the libp2p ed25519 private key, mode 0600; see [LoadIdentity]
//	api.token      the HTTP API bearer token, mode 0600; see [LoadToken]
//	genesis.cbor   the federation genesis, owned by the node package
//	store/         the pebble store, owned by the store package
//
// The directory is found by [ResolveDataDir] and created by [Init]. Every
// default lives in defaults.go; [Default] returns them as a [Config].
//
// Problems are reported so that an operator can fix them without reading
// code: a problem with a configuration value is an [*Error] naming the file
// (when there is one), the position (when known) and the key path, for
// example
//
//	config: /home/op/.clearinghouse/config.toml: sync.interval: must be > 0
//
// and a secret file that group or others can access is refused with the
// chmod command that fixes it ([ErrInsecureMode]).
//
// The package performs file I/O but starts no goroutines and holds no
// state; the cmd/clearinghouse CLI is its main user, and it hands the values
// it loaded to the node package as explicit options.
package config
