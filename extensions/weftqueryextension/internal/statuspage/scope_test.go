package statuspage

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/weftobs/weft/internal/rulesapi"
)

// The rules table shows each rule's scope and why.
func TestStatusPageShowsScope(t *testing.T) {
	rec := httptest.NewRecorder()
	renderHTML(rec, statusTmpl, http.StatusOK, statusPage{HasRules: true, Groups: []rulesapi.Group{{
		Name: "svc",
		Rules: []rulesapi.Rule{
			{Type: "alerting", Name: "ServiceErrors", Scope: rulesapi.ScopeCluster, ScopeReason: "sum by (service) drops node/pod/instance"},
			{Type: "recording", Name: "weft:partial:0123", Scope: rulesapi.ScopeNode, PartialOf: "ServiceErrors"},
		},
	}}})
	body := rec.Body.String()
	assert.Contains(t, body, `<td class="scope-cluster">cluster<br><span class="muted">sum by (service) drops node/pod/instance</span></td>`)
	assert.Contains(t, body, `node (partial of ServiceErrors)`)
}
