# weft — build, demo, test, bench. `make help` lists the targets.

GO        ?= go
TOOLS_DIR ?= $(HOME)/.cache/weft/tools
JAEGER_VERSION := v1.76.0
JAEGER    := $(TOOLS_DIR)/jaeger-$(JAEGER_VERSION)
THANOS_VERSION := v0.42.4
THANOS    := $(TOOLS_DIR)/thanos-$(THANOS_VERSION)
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Integration tests find the real backends through these.
export WEFT_JAEGER := $(JAEGER)
export WEFT_THANOS := $(THANOS)

.PHONY: help build build-demo demo demo-jaeger test unit tools debian-tools bench bench-storeapi bench-compare bench-evidence bench-traces noisy soak lint tidy-check clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# CGO_ENABLED=0 and -trimpath are the Dockerfile's too, and every build the
# tests and bench harnesses make (internal/gobuild): one compile of each
# package serves them all.
build: ## build bin/weft
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/weft ./cmd/weft

build-demo: build ## build bin/weft-demo, the demo rig (kept out of bin/weft), beside bin/weft
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/weft-demo ./cmd/weft-demo

# bin/weft-demo runs bin/weft (found beside it) on a simulated node. It
# starts each backend it finds (WEFT_JAEGER, WEFT_PROMETHEUS,
# WEFT_ALERTMANAGER or PATH) and prints a line for each one it skips.
demo: build-demo ## run the agent on a simulated node (with Jaeger, Prometheus, Alertmanager if `make tools` installed them)
	bin/weft-demo $(DEMO_FLAGS)

demo-jaeger: build-demo tools ## like demo, building Jaeger first if needed
	bin/weft-demo --jaeger "$(JAEGER)" $(DEMO_FLAGS)

tools: debian-tools $(JAEGER) $(THANOS) ## install the real backends the integration tests use

debian-tools:
	hack/install-debian-tools.sh

$(JAEGER):
	hack/build-module-tool.sh jaeger github.com/jaegertracing/jaeger $(JAEGER_VERSION) ./cmd/jaeger "$(TOOLS_DIR)" >/dev/null

$(THANOS):
	BUILD_TAGS=netgo,slicelabels hack/build-module-tool.sh thanos github.com/thanos-io/thanos $(THANOS_VERSION) ./cmd/thanos "$(TOOLS_DIR)" >/dev/null

# The test binaries have the release build's flags (TEST_ENV, TEST_FLAGS),
# as has every binary the tests build and start (internal/gobuild): one
# compile of each package serves all of them, which keeps a cold make test
# on two cores under 45 minutes. With -race as well, every package was
# compiled twice (race and not) and a cold run took an hour; the race
# detector runs in `make unit`. Everything is compiled first, beside the
# tools' installs (hack/test-build.sh); the tests then run in two lanes side
# by side, one package at a time in each (hack/test-run.sh): the ports
# internal/loopback hands out are claimed in a file both lanes read.
TEST_ENV   := CGO_ENABLED=0
TEST_FLAGS := -trimpath -count=1 -tags integration
export TEST_ENV TEST_FLAGS
test: ## unit and integration tests (the race detector: make unit)
	GO="$(GO)" MAKE="$(MAKE)" hack/test-build.sh
	GO="$(GO)" hack/test-run.sh

unit: ## unit tests only (no backends needed), with the race detector
	$(GO) test -race -count=1 ./...

bench: ## Go benchmarks (see bench/RESULTS.md for recorded figures)
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-traces: tools ## OTLP in → Jaeger out: weft vs the otelcol core distribution's set and vs a minimal build (ABBA, 5k spans/s)
	$(GO) run ./bench/otlpjaeger -peer-tags otelcol,grpcnotrace $(BENCH_TRACES_FLAGS)
	$(GO) run ./bench/otlpjaeger $(BENCH_TRACES_FLAGS)

noisy: tools ## the noisy-neighbour test of issue #16 alone, verbose (it is also part of make test)
	$(GO) test -tags integration -count=1 -run TestNoisyNeighbour -v ./cmd/weft/

soak: ## loop the remote-write outage + SIGKILL test (SOAK_COUNT runs, default 50)
	$(GO) test -race -tags integration -run TestRemoteWriteOutageAndKill -count=$(or $(SOAK_COUNT),50) -failfast -timeout 0 ./cmd/weft/

bench-storeapi: tools ## weft's Thanos StoreAPI vs Prometheus 2.42 + Thanos sidecar, and Thanos Query latency over 1/3/10 agents → bench/compare/results/storeapi-*.md
	cd bench/compare && $(GO) run . storeapi -thanos "$(THANOS)" $(BENCH_STOREAPI_FLAGS)

bench-evidence: ## weft pins + evidence_sampling vs contrib tail_sampling (bench/tailpeer, v0.161.0) on 3 loopback nodes, pin network cost, decision buffer memory → bench/evidence/results/evidence.md
	$(GO) run ./bench/evidence -out bench/evidence/results/evidence.md

bench-compare: ## weft vs otelcol contrib/core and Prometheus 2.42 side by side → bench/RESULTS.md, bench/compare/results/
	hack/install-debian-tools.sh
	cd bench/compare && $(GO) run . -out .. $(BENCH_COMPARE_FLAGS)

lint: ## tracked files (no binaries, nothing over 1 MiB outside testdata/), go vet, gofmt, staticcheck
	hack/check-tracked.sh
	$(GO) vet -tags integration ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run $(STATICCHECK) -tags integration ./...

tidy-check: ## fail if go.mod/go.sum are not tidy
	$(GO) mod tidy -diff

clean:
	rm -rf bin
