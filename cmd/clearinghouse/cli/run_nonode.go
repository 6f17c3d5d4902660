//go:build !clearinghouse_node

package cli

import (
	"context"
	"errors"
)

// startNode is a stand-in until the node package compiles; see run_node.go.
func startNode(context.Context, nodeParams) (runningNode, error) {
	return nil, errors.New("this binary was built without the node package (build tag clearinghouse_node)")
}
