package tracecontextprocessor

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		id   component.ID
		want *Config
	}{
		{component.NewID(component.MustNewType(typeStr)), &Config{Body: true, Severity: true}},
		{component.NewIDWithName(component.MustNewType(typeStr), "custom"), &Config{
			Fields:     FieldsConfig{TraceID: []string{"correlation.trace", "request.trace"}, SpanID: []string{"correlation.span"}},
			Body:       true,
			Attributes: []string{"message", "log"},
			Severity:   true,
		}},
		{component.NewIDWithName(component.MustNewType(typeStr), "attributes_only"), &Config{Attributes: []string{"message"}, Severity: true}},
		{component.NewIDWithName(component.MustNewType(typeStr), "no_severity"), &Config{Body: true}},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestUnknownKeyRejected(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig()
	err := confmap.NewFromStringMap(map[string]any{"feilds": map[string]any{}}).Unmarshal(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "feilds")
}

func TestValidate(t *testing.T) {
	many := make([]string, maxFieldNames+1)
	for i := range many {
		many[i] = "f" + string(rune('a'+i))
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings; nil means valid
	}{
		{"default", Config{Body: true}, nil},
		{"fields", Config{Body: true, Fields: FieldsConfig{TraceID: []string{"x.trace", "TraceRef"}, SpanID: []string{"x.span"}}}, nil},
		{"empty trace field", Config{Body: true, Fields: FieldsConfig{TraceID: []string{""}}}, []string{"fields::trace_id[0]: empty name"}},
		{"duplicate span field", Config{Body: true, Fields: FieldsConfig{SpanID: []string{"a", "a"}}}, []string{"fields::span_id[1]: duplicate"}},
		{"space in field", Config{Body: true, Fields: FieldsConfig{TraceID: []string{"trace id"}}}, []string{"fields::trace_id[0]", "contains ' '"}},
		{"equals in field", Config{Body: true, Fields: FieldsConfig{SpanID: []string{"a=b"}}}, []string{"fields::span_id[0]", "contains '='"}},
		{"too many fields", Config{Body: true, Fields: FieldsConfig{TraceID: many}}, []string{"fields::trace_id: at most 16 names"}},
		{"nothing to search", Config{}, []string{"nothing to search", "body", "attributes"}},
		{"empty attribute", Config{Body: true, Attributes: []string{""}}, []string{"attributes[0]: empty name"}},
		{"attribute with space allowed", Config{Attributes: []string{"log message"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, s := range tt.wantErr {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
}
