package weftqueryextension

import (
	"fmt"
	"slices"

	"go.opentelemetry.io/collector/component"

	"github.com/weftobs/weft/internal/rulesapi"
)

// findRules returns the rules source: the named extension (which must be
// one), else the first extension by ID that is one, else nil.
func findRules(exts map[component.ID]component.Component, id component.ID) (rulesapi.Source, error) {
	if id.Type().String() != "" {
		rs, ok := exts[id].(rulesapi.Source)
		if !ok {
			return nil, fmt.Errorf("weft_query: rules: extension %q does not exist or offers no rules and alerts", id)
		}
		return rs, nil
	}
	ids := make([]component.ID, 0, len(exts))
	for eid, e := range exts {
		if _, ok := e.(rulesapi.Source); ok {
			ids = append(ids, eid)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	slices.SortFunc(ids, func(a, b component.ID) int {
		if a.String() < b.String() {
			return -1
		}
		if a.String() > b.String() {
			return 1
		}
		return 0
	})
	return exts[ids[0]].(rulesapi.Source), nil
}
