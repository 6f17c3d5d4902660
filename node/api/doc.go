// Package api is the node's HTTP JSON API: the interface of the CLI client
// commands, the web view and anything else built on a running node.
//
// The API serves the routes under /api/v1 documented in docs/api.md. Reads
// are open; every write needs the bearer token from the data directory's
// api.token (see config.LoadToken). An observer node has no write routes.
// Errors are JSON objects with a stable code, a message and, for records
// the protocol refuses, the protocol reason. GET /api/v1/events is a
// resumable Server-Sent Events stream of accepted records, and GET
// /metrics serves the node's Prometheus registry. The same server answers
// the read-only web view (web.go): HTML pages of the issues, processes and
// their audits at /, /issues/{slug} and /processes/{cid}.
//
// Besides reading the node, the API calls Node.Publish,
// Node.PublishComment, Node.Follow, Node.Unfollow, Node.Block,
// Node.Unblock, Node.Sync and Node.Backup; it holds no
// state of its own besides its open event streams, its web sessions and
// its caches of decoded records and audits, which end when the server is
// closed.
package api
