// Package weftest holds small helpers shared by the tests of weft's
// components: a component.Host with a fixed set of extensions, and IDs
// parsed from hex. It is imported by _test.go files only.
package weftest

import (
	"encoding/hex"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Host is a component.Host whose extensions are the map's.
type Host map[component.ID]component.Component

// GetExtensions implements component.Host.
func (h Host) GetExtensions() map[component.ID]component.Component { return h }

// TraceID parses 32 hex digits, failing the test on anything else.
func TraceID(t testing.TB, h string) pcommon.TraceID {
	t.Helper()
	var id pcommon.TraceID
	if len(h) != 2*len(id) {
		t.Fatalf("trace ID %q: want 32 hex digits", h)
	} else if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		t.Fatalf("trace ID %q: %v", h, err)
	}
	return id
}

// SpanID parses 16 hex digits, failing the test on anything else.
func SpanID(t testing.TB, h string) pcommon.SpanID {
	t.Helper()
	var id pcommon.SpanID
	if len(h) != 2*len(id) {
		t.Fatalf("span ID %q: want 16 hex digits", h)
	} else if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		t.Fatalf("span ID %q: %v", h, err)
	}
	return id
}
