// Package nodestatustest gives receiver tests a status owner to put on
// their test host, so they can read what the receiver publishes.
package nodestatustest

import (
	"go.opentelemetry.io/collector/component"

	"github.com/weftobs/weft/internal/nodestatus"
)

// Owner is an extension that owns a status board, as weft_query does.
type Owner struct {
	component.StartFunc
	component.ShutdownFunc
	nodestatus.Board
}

// StatusBoard implements nodestatus.Owner.
func (o *Owner) StatusBoard() *nodestatus.Board { return &o.Board }

// ID is the ID tests give the owner on their hosts.
var ID = component.MustNewIDWithName("weft_query", "status")
