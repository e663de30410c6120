// Package comparesmoke holds the CI smoke test of the side-by-side
// benchmark harness in bench/compare. The harness is its own Go module (its
// plotting library is no dependency of weft), so the test runs it as a
// program: `go run .` in bench/compare with -smoke, then reads its JSON.
package comparesmoke
