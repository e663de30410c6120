package deploy

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goBuildStep is the `go build` command of the Dockerfile's build stage.
type goBuildStep struct {
	Env  []string // KEY=VALUE assignments before `go build`
	Args []string // after `go`: build, flags, packages
}

// flagValue returns the value of a flag given as "-flag value" or
// "-flag=value".
func (s goBuildStep) flagValue(name string) (string, bool) {
	for i, a := range s.Args {
		if a == name && i+1 < len(s.Args) {
			return s.Args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// parseDockerfileBuild finds the single RUN instruction that runs `go
// build` and returns its environment and arguments, with build arguments
// expanded: the Dockerfile's ARG defaults, overridden by args.
func parseDockerfileBuild(dockerfile string, args map[string]string) (goBuildStep, error) {
	vars := map[string]string{}
	var runs []string
	for _, inst := range dockerInstructions(dockerfile) {
		keyword, rest, _ := strings.Cut(inst, " ")
		switch strings.ToUpper(keyword) {
		case "ARG":
			name, def, _ := strings.Cut(strings.TrimSpace(rest), "=")
			vars[name] = def
		case "RUN":
			if regexp.MustCompile(`(^|\s)go\s+build(\s|$)`).MatchString(rest) {
				runs = append(runs, rest)
			}
		}
	}
	for k, v := range args {
		vars[k] = v
	}
	if len(runs) != 1 {
		return goBuildStep{}, fmt.Errorf("want exactly one RUN with `go build`, found %d", len(runs))
	}
	words, err := shellWords(runs[0], vars)
	if err != nil {
		return goBuildStep{}, err
	}
	for len(words) > 0 && strings.HasPrefix(words[0], "--") { // RUN flags (--mount=...)
		words = words[1:]
	}
	var step goBuildStep
	for len(words) > 0 && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(words[0]) {
		step.Env = append(step.Env, words[0])
		words = words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		return goBuildStep{}, fmt.Errorf("the RUN instruction is not `[VAR=value...] go build ...`: %q", runs[0])
	}
	step.Args = words[1:]
	for _, w := range step.Args {
		if slices.Contains([]string{"&&", "||", ";", "|"}, w) {
			return goBuildStep{}, fmt.Errorf("the `go build` RUN must be one command, found %q", w)
		}
	}
	return step, nil
}

// dockerInstructions joins continuation lines and drops comments.
func dockerInstructions(dockerfile string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(dockerfile, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "#") || (t == "" && cur.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(t, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(t)
		out = append(out, strings.TrimSpace(cur.String()))
		cur.Reset()
	}
	return out
}

// shellWords splits s into words like a POSIX shell: single and double
// quotes, backslash escapes outside single quotes, ${VAR} and $VAR
// expanded outside single quotes. An undefined variable is an error.
func shellWords(s string, vars map[string]string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord, quote := false, byte(0)
	varName := regexp.MustCompile(`^(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)`)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				w.WriteByte(c)
			}
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case c == '$':
			m := varName.FindString(s[i+1:])
			if m == "" {
				w.WriteByte(c)
				inWord = true
				continue
			}
			name := strings.Trim(m, "{}")
			v, ok := vars[name]
			if !ok {
				return nil, fmt.Errorf("undefined variable $%s", name)
			}
			w.WriteString(v)
			inWord = true
			i += len(m)
		case quote == '"':
			if c == '"' {
				quote = 0
			} else {
				w.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote = c
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// staticELF returns an error when the ELF file at path asks for a dynamic
// loader (PT_INTERP) or shared libraries (DT_NEEDED).
func staticELF(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s has a PT_INTERP program header (dynamic loader)", path)
		}
	}
	needed, err := f.DynString(elf.DT_NEEDED)
	if err != nil && f.Section(".dynamic") != nil {
		return fmt.Errorf("%s: read DT_NEEDED: %w", path, err)
	}
	if len(needed) > 0 {
		return fmt.Errorf("%s needs shared libraries %v (DT_NEEDED)", path, needed)
	}
	return nil
}

// dockerBuildArgs are the build arguments the tests pass: this machine's
// platform (buildx passes the target's) and a version to find in the binary.
func dockerBuildArgs() map[string]string {
	return map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH, "VERSION": "deploy-test"}
}

func TestDockerfileBuildStep(t *testing.T) {
	raw, err := os.ReadFile("../Dockerfile")
	require.NoError(t, err)
	step, err := parseDockerfileBuild(string(raw), dockerBuildArgs())
	require.NoError(t, err)
	assert.Contains(t, step.Env, "CGO_ENABLED=0", "a static binary")
	assert.Contains(t, step.Env, "GOOS="+runtime.GOOS)
	assert.Contains(t, step.Args, "./cmd/weft")
	out, ok := step.flagValue("-o")
	require.True(t, ok, "-o names the binary the final stage copies")
	assert.Contains(t, string(raw), "COPY --from=build "+out+" ", "the final stage copies the binary the build step writes")

	// The flags of the Makefile's build target are all there.
	mk, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	ldflags := regexp.MustCompile(`(?m)^LDFLAGS\s*:=\s*(.+)$`).FindSubmatch(mk)
	require.NotNil(t, ldflags, "Makefile LDFLAGS")
	want := strings.ReplaceAll(string(ldflags[1]), "$(VERSION)", "deploy-test")
	got, ok := step.flagValue("-ldflags")
	require.True(t, ok, "-ldflags")
	assert.Contains(t, got, want)
	build := regexp.MustCompile(`(?m)^\t(CGO_ENABLED=0 )?\$\(GO\) build (.+)$`).FindSubmatch(mk)
	require.NotNil(t, build, "Makefile build line")
	assert.NotEmpty(t, build[1], "the Makefile builds with CGO_ENABLED=0, as the Dockerfile does")
	for _, f := range strings.Fields(string(build[2])) {
		if strings.HasPrefix(f, "-") && f != "-o" && f != "-ldflags" {
			assert.Contains(t, step.Args, f, "the Makefile builds with %s", f)
		}
	}

	// The final image runs as a non-root user.
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(string(raw), -1)
	require.NotEmpty(t, user)
	last := user[len(user)-1][1]
	assert.NotContains(t, []string{"0", "root", "0:0", "root:root"}, last)
	assert.Regexp(t, `^[1-9][0-9]*(:[1-9][0-9]*)?$`, last, "numeric, so runAsNonRoot can verify it")
}

func TestParseDockerfileBuildRejects(t *testing.T) {
	for name, df := range map[string]string{
		"two commands":      "RUN go vet ./... && go build -o /x ./cmd/weft\n",
		"no build":          "RUN go vet ./...\n",
		"undefined arg":     "RUN CGO_ENABLED=0 go build -o /x/${NOPE} ./cmd/weft\n",
		"unterminated":      "RUN go build -ldflags \"-s -w ./cmd/weft\n",
		"two build steps":   "RUN go build ./a\nRUN go build ./b\n",
		"not go build head": "RUN sh -c 'go build ./cmd/weft'\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseDockerfileBuild(df, nil)
			require.Error(t, err)
		})
	}
	step, err := parseDockerfileBuild("ARG V=1\nRUN --mount=type=cache,target=/c \\\n  # comment\n  A=1 go build -ldflags \"-X main.version=${V}\" -o /out/w ./cmd/weft\n", map[string]string{})
	require.NoError(t, err)
	assert.Equal(t, []string{"A=1"}, step.Env)
	assert.Equal(t, []string{"build", "-ldflags", "-X main.version=1", "-o", "/out/w", "./cmd/weft"}, step.Args)
}

// The static check tells a dynamically linked program from a static one.
func TestStaticELFDetectsDynamicBinary(t *testing.T) {
	sh, err := exec.LookPath("sh")
	require.NoError(t, err)
	require.Error(t, staticELF(sh), "%s is dynamically linked on Debian", sh)
}

// The build context .dockerignore leaves holds every package and embedded
// file `go build ./cmd/weft` needs: each top-level directory of a weft
// package is re-included, and no embedded file is a test file or under
// testdata/ (both excluded).
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	raw, err := os.ReadFile("../.dockerignore")
	require.NoError(t, err)
	included := map[string]bool{}
	var lines []string
	for _, l := range strings.Split(string(raw), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
		if s, ok := strings.CutPrefix(l, "!"); ok {
			included[strings.TrimSuffix(s, "/")] = true
		}
	}
	require.NotEmpty(t, lines)
	require.Equal(t, "*", lines[0], "everything is excluded first, then the build inputs re-included")
	for _, f := range []string{"go.mod", "go.sum"} {
		assert.True(t, included[f], "%s is in the build context", f)
	}

	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if eq .Module.Path "github.com/weftobs/weft"}}{{.ImportPath}} {{join .EmbedFiles ","}}{{end}}{{end}}`, "./cmd/weft")
	cmd.Dir = ".."
	out, err := cmd.Output()
	require.NoError(t, err)
	pkgs := 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l == "" {
			continue
		}
		pkg, embeds, _ := strings.Cut(l, " ")
		rel := strings.TrimPrefix(pkg, "github.com/weftobs/weft/")
		top, _, _ := strings.Cut(rel, "/")
		assert.True(t, included[top], "package %s: %s/ is not re-included in .dockerignore", pkg, top)
		for _, e := range strings.Split(embeds, ",") {
			if e != "" {
				assert.False(t, strings.HasSuffix(e, "_test.go") || strings.Contains("/"+e, "/testdata/"),
					"package %s embeds %s, which .dockerignore excludes", pkg, e)
			}
		}
		pkgs++
	}
	assert.Greater(t, pkgs, 5, "go list found weft's packages")
}
