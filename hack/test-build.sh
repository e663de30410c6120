#!/usr/bin/env bash
# Step 1 of `make test`: compiles everything the tests need, at once.
#
# Three jobs run side by side, each with its log in bin/:
#   tools     `make tools`: the Debian packages, Jaeger and Thanos
#             (bin/test-tools.log)
#   tests     every package with its tests ($TEST_ENV, $TEST_FLAGS: the
#             Makefile's), compiled by `go list -export -test`
#             (bin/test-build.log)
#   binaries  what the tests build and start themselves, with the flags
#             they use: weft, weft-demo, the bench peers and harnesses
#             (bin/test-binaries.log)
# Step 2 (hack/test-run.sh) then finds every compiled package in the build
# cache: the test binaries and the binaries share one compile of each
# package, having the same flags. Run one after the other, the jobs left a
# core idle while apt or the module proxy answered, or a linker (one core)
# ran. Each job fails on its own; the script waits for all three and
# prints the log of each that failed.
set -uo pipefail

GO=${GO:-go}
MAKE=${MAKE:-make}
mkdir -p bin

# The flags of internal/gobuild, which every test and harness builds with.
gobuild() { CGO_ENABLED=0 "$GO" build -trimpath -o /dev/null "$@"; }

binaries() {
  set -e
  # weft and the demo rig (cmd/weft, cmd/weft-demo, deploy, receivers,
  # the bench harnesses; make demo's bin/weft)
  gobuild ./cmd/weft
  gobuild ./cmd/weft-demo
  # bench/comparesmoke: the core and the contrib peer (the smoke's tags);
  # the harness itself runs by `go run .`, with go's default flags
  (cd bench/peer && gobuild . && gobuild -tags contrib,remove_all_sd .)
  (cd bench/compare && "$GO" build -o /dev/null .)
  # bench/evidence: contrib tail_sampling at its own release
  (cd bench/tailpeer && gobuild .)
  # exporters/fluentforwardexporter: the forward peer
  (cd bench/fluentpeer && gobuild .)
}

names=(tools tests binaries)
logs=(bin/test-tools.log bin/test-build.log bin/test-binaries.log)
"$MAKE" --no-print-directory -j3 tools >"${logs[0]}" 2>&1 &
pids=($!)
# The test packages compiled, not linked: `go list -export` compiles each
# (export data) with go test's flags but links nothing; step 2 compiles only
# each test's generated main and links it once. Run with `-run '^$'`, this
# job linked and started the 43 test binaries, and step 2 linked them again.
list_flags=()
for f in ${TEST_FLAGS:--trimpath -count=1 -tags integration}; do
  case "$f" in
  -count=*) ;; # a go test flag only
  *) list_flags+=("$f") ;;
  esac
done
# shellcheck disable=SC2086 # the environment is words
env ${TEST_ENV:-CGO_ENABLED=0} "$GO" list "${list_flags[@]}" -export -test ./... >/dev/null 2>"${logs[1]}" &
pids+=($!)
binaries >"${logs[2]}" 2>&1 &
pids+=($!)

failed=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "test-build: ${names[$i]} failed (${logs[$i]}):" >&2
    cat "${logs[$i]}" >&2
    failed=1
  fi
done
exit $failed
