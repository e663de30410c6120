#!/usr/bin/env bash
# Step 2 of `make test` (step 1, hack/test-build.sh, compiled everything):
# the tests, in two lanes side by side, each one package at a time.
#
# The tests mostly wait (scrape intervals, backends starting, workloads
# paced in real time): one package at a time left the two cores idle
# (load average 0.7 over the 21 minutes of a cold run). Lane A takes the
# longest package, cmd/weft (~8 min), and three more; lane B everything
# else, so a package added later lands in lane B. Ports cannot collide
# between the lanes: internal/loopback records the ports it hands out in a
# file both processes read. Lane A's output is printed when both are done.
set -uo pipefail

GO=${GO:-go}
mkdir -p bin
module=$("$GO" list -m)
lane_a=(./cmd/weft ./receivers/containerlogsreceiver ./bench/evidence ./deploy)
declare -A in_a
for p in "${lane_a[@]}"; do in_a["$module/${p#./}"]=1; done
lane_b=()
while IFS= read -r pkg; do
  [ -n "${in_a[$pkg]:-}" ] || lane_b+=("$pkg")
done < <("$GO" list ./...)

log=bin/test-lane-a.log
# shellcheck disable=SC2086 # the flags are words
env ${TEST_ENV:-CGO_ENABLED=0} "$GO" test ${TEST_FLAGS:--trimpath -count=1 -tags integration} -timeout 30m -p 1 "${lane_a[@]}" >"$log" 2>&1 &
pid=$!
# shellcheck disable=SC2086
env ${TEST_ENV:-CGO_ENABLED=0} "$GO" test ${TEST_FLAGS:--trimpath -count=1 -tags integration} -timeout 30m -p 1 "${lane_b[@]}"
rc_b=$?
wait "$pid"
rc_a=$?
echo "--- lane A (${lane_a[*]}), from $log:"
cat "$log"
if [ "$rc_a" -ne 0 ] || [ "$rc_b" -ne 0 ]; then
  echo "test-run: lane A exit $rc_a, lane B exit $rc_b" >&2
  exit 1
fi
