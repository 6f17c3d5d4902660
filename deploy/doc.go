// Package deploy holds what an operator installs a node with, and the tests
// that keep it working: the systemd unit (clearinghouse.service), the
// container recipe (Containerfile) and the Grafana dashboard
// (grafana-dashboard.json). It has no Go code of its own; see
// docs/operations.md.
package deploy
