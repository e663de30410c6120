package backends

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFindThanosExplainsInstall(t *testing.T) {
	t.Setenv("WEFT_THANOS", filepath.Join(t.TempDir(), "thanos-v0.42.4"))
	t.Setenv("PATH", t.TempDir())
	_, err := FindThanos()
	require.ErrorContains(t, err, "make tools")
	require.ErrorContains(t, err, "WEFT_THANOS")
	require.ErrorContains(t, err, "does not exist")
}

func TestStartThanosQueryReportsEarlyExit(t *testing.T) {
	dir := t.TempDir()
	_, err := StartThanosQuery(t.Context(), fakeBinary(t), dir, []string{"127.0.0.1:10901", "127.0.0.1:10902"}, nil, nil)
	require.ErrorContains(t, err, "thanos query exited before it was ready")

	// The endpoints it was given are in its endpoint configuration file.
	cfg, err := os.ReadFile(filepath.Join(dir, "thanos-query-endpoints.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "endpoints:\n  - address: \"127.0.0.1:10901\"\n  - address: \"127.0.0.1:10902\"\n", string(cfg))
}

// The command line binds loopback ports only and carries the extra
// arguments after the launcher's own.
func TestStartThanosQueryStaysOnLoopback(t *testing.T) {
	dir := t.TempDir()
	argsOut := filepath.Join(dir, "args")
	p := filepath.Join(t.TempDir(), "thanos")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > "+argsOut+"\nexit 1\n"), 0o755))
	_, err := StartThanosQuery(t.Context(), p, dir, nil, []string{"--query.partial-response"}, nil)
	require.Error(t, err)
	b, err := os.ReadFile(argsOut)
	require.NoError(t, err)
	args := string(b)
	assert.Regexp(t, `(?m)^query$`, args)
	assert.Regexp(t, `(?m)^--http-address=127\.0\.0\.1:\d+$`, args)
	assert.Regexp(t, `(?m)^--grpc-address=127\.0\.0\.1:\d+$`, args)
	assert.Regexp(t, `(?m)^--query\.partial-response\n?\z`, args, "extra arguments come last")
	cfg, err := os.ReadFile(filepath.Join(dir, "thanos-query-endpoints.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "endpoints: []\n", string(cfg))
}

func TestStartThanosSidecarReportsEarlyExit(t *testing.T) {
	_, err := StartThanosSidecar(t.Context(), fakeBinary(t), "http://127.0.0.1:9", t.TempDir(), "", nil)
	require.ErrorContains(t, err, "thanos sidecar exited before it was ready")
}

// A Go-built Thanos without the slicelabels tag is refused; a program
// without Go build information is not judged.
func TestCheckThanosBuild(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	err = CheckThanosBuild(self) // this test binary: Go, no slicelabels tag
	require.ErrorContains(t, err, "built without the slicelabels tag")

	t.Setenv("WEFT_THANOS", self)
	_, err = FindThanos()
	require.ErrorContains(t, err, "slicelabels")

	require.NoError(t, CheckThanosBuild(fakeBinary(t)), "a shell script has no Go build information")
}

func TestStartThanosRulerReportsEarlyExit(t *testing.T) {
	_, err := StartThanosRuler(t.Context(), fakeBinary(t), t.TempDir(), "http://127.0.0.1:9", "", []string{"r.yaml"}, nil, nil)
	require.ErrorContains(t, err, "thanos rule exited before it was ready")
}

// The command line binds loopback ports only, names the query, the
// Alertmanager, every rule file and the data directory under dir; the test
// defaults give way to extra arguments that set the same flags.
func TestStartThanosRulerArgs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		extra     []string
		want      []string // lines that must appear
		wantCount map[string]int
	}{
		{name: "defaults", want: []string{"--eval-interval=2s", `--label=ruler="r1"`},
			wantCount: map[string]int{"--eval-interval=": 1, "--label=": 1}},
		{name: "overridden", extra: []string{"--eval-interval=5s", `--label=replica="a"`},
			want:      []string{"--eval-interval=5s", `--label=replica="a"`},
			wantCount: map[string]int{"--eval-interval=": 1, "--label=": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			argsOut := filepath.Join(t.TempDir(), "args")
			p := filepath.Join(t.TempDir(), "thanos")
			require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > "+argsOut+"\nexit 1\n"), 0o755))
			_, err := StartThanosRuler(t.Context(), p, dir, "http://127.0.0.1:10902", "http://127.0.0.1:9093", []string{"/a.yaml", "/b/*.yaml"}, tc.extra, nil)
			require.Error(t, err)
			b, err := os.ReadFile(argsOut)
			require.NoError(t, err)
			args := string(b)
			assert.Regexp(t, `\Arule\n`, args)
			assert.Regexp(t, `(?m)^--http-address=127\.0\.0\.1:\d+$`, args)
			assert.Regexp(t, `(?m)^--grpc-address=127\.0\.0\.1:\d+$`, args)
			lines := strings.Split(strings.TrimSpace(args), "\n")
			for _, w := range append([]string{
				"--query=http://127.0.0.1:10902",
				"--alertmanagers.url=http://127.0.0.1:9093",
				"--rule-file=/a.yaml", "--rule-file=/b/*.yaml",
				"--data-dir=" + filepath.Join(dir, "data"),
			}, tc.want...) {
				assert.Contains(t, lines, w)
			}
			for prefix, n := range tc.wantCount {
				got := 0
				for _, l := range lines {
					if strings.HasPrefix(l, prefix) {
						got++
					}
				}
				assert.Equal(t, n, got, prefix)
			}
		})
	}
}
