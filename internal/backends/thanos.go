package backends

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/weftobs/weft/internal/loopback"
)

// FindThanos returns the path of the Thanos binary: $WEFT_THANOS when it
// names an executable file, else `thanos` on PATH. `make tools` builds
// v0.42.4 from its module source with hack/build-module-tool.sh. A Go
// binary built without the slicelabels tag is refused (CheckThanosBuild).
func FindThanos() (string, error) {
	p, err := find("WEFT_THANOS", "thanos")
	if err != nil {
		return "", err
	}
	if err := CheckThanosBuild(p); err != nil {
		return "", err
	}
	return p, nil
}

// CheckThanosBuild refuses a Thanos binary that Go built without the
// slicelabels tag. Thanos's release build (.promu.yml) sets the tags netgo
// and slicelabels: its labelpb package casts Prometheus label sets to its
// protobuf types with unsafe, which holds only for the slice layout of
// labels.Labels. Without the tag the casts read garbage (a sidecar panics
// while encoding its Info answer: "makeslice: len out of range"). A binary
// without Go build information (not built by Go from source here) passes.
func CheckThanosBuild(path string) error {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil // no Go build information: nothing to check
	}
	for _, s := range info.Settings {
		if s.Key == "-tags" && slices.Contains(strings.Split(s.Value, ","), "slicelabels") {
			return nil
		}
	}
	return fmt.Errorf("thanos binary %s was built without the slicelabels tag (go build -tags netgo,slicelabels, as Thanos's .promu.yml does); without it Thanos reads label sets as garbage: rebuild it", path)
}

// ThanosQuery is a running Thanos Query (`thanos query`). Every address is
// host:port on 127.0.0.1.
type ThanosQuery struct {
	HTTP string // Prometheus-compatible HTTP API (/api/v1/*), UI, /-/ready
	GRPC string // Thanos gRPC APIs (StoreAPI, Query, Rules, ...)

	proc *process
}

// URL is the base URL of the HTTP API.
func (q *ThanosQuery) URL() string { return "http://" + q.HTTP }

// StartThanosQuery runs `thanos query` over the StoreAPI endpoints (gRPC
// host:port), listed in an endpoint configuration file written to dir
// (--endpoint.sd-config-file; non-strict endpoints: one whose Info call
// fails drops out of the fan-out until a later check succeeds). extraArgs
// are appended to the command line, e.g. --query.partial-response or
// --endpoint-strict=host:port. It waits until /-/ready answers 200, which
// Thanos Query does after its first endpoint update. ctx bounds the start
// only; stop it with Stop.
func StartThanosQuery(ctx context.Context, binary, dir string, endpoints, extraArgs []string, logOut io.Writer) (*ThanosQuery, error) {
	var sd strings.Builder
	sd.WriteString("endpoints:\n")
	for _, ep := range endpoints {
		fmt.Fprintf(&sd, "  - address: %q\n", ep)
	}
	if len(endpoints) == 0 {
		sd.Reset()
		sd.WriteString("endpoints: []\n")
	}
	sdPath := filepath.Join(dir, "thanos-query-endpoints.yaml")
	if err := os.WriteFile(sdPath, []byte(sd.String()), 0o600); err != nil {
		return nil, fmt.Errorf("write thanos query endpoints: %w", err)
	}
	q := &ThanosQuery{}
	err := withFreshPorts(func() error {
		addrs, err := loopback.FreeAddrs(2)
		if err != nil {
			return err
		}
		q.HTTP, q.GRPC = addrs[0], addrs[1]
		args := append([]string{
			"query",
			"--http-address=" + q.HTTP,
			"--grpc-address=" + q.GRPC,
			"--endpoint.sd-config-file=" + sdPath,
			"--log.level=warn",
		}, extraArgs...)
		q.proc, err = startProcess(ctx, "thanos query", binary, args, nil, logOut, q.URL()+"/-/ready")
		return err
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}

// Stop ends the process and waits for it. Safe to call twice.
func (q *ThanosQuery) Stop() { q.proc.stop() }

// ThanosSidecar is a running Thanos sidecar (`thanos sidecar`) serving the
// StoreAPI, Rules and Exemplars APIs over one Prometheus: the peer that
// weft's StoreAPI is compared with. Every address is host:port on
// 127.0.0.1.
type ThanosSidecar struct {
	HTTP string // /metrics, /-/ready
	GRPC string // StoreAPI, Info, Rules, Exemplars

	proc *process
}

// StartThanosSidecar runs `thanos sidecar` over the Prometheus at promURL
// whose TSDB is tsdbPath (the sidecar reads its external labels from
// Prometheus's configuration and uploads nothing: there is no object
// store). grpcAddr is the StoreAPI's address; empty picks a free loopback
// port (give the previous one to restart a sidecar where Thanos Query
// expects it). It waits until /-/ready answers 200, which the sidecar
// does once it has read Prometheus's external labels. ctx bounds the start
// only; stop it with Stop.
func StartThanosSidecar(ctx context.Context, binary, promURL, tsdbPath, grpcAddr string, logOut io.Writer) (*ThanosSidecar, error) {
	s := &ThanosSidecar{}
	err := withFreshPorts(func() error {
		addrs, err := loopback.FreeAddrs(2)
		if err != nil {
			return err
		}
		s.HTTP, s.GRPC = addrs[0], addrs[1]
		if grpcAddr != "" {
			s.GRPC = grpcAddr
		}
		args := []string{
			"sidecar",
			"--http-address=" + s.HTTP,
			"--grpc-address=" + s.GRPC,
			"--prometheus.url=" + promURL,
			"--tsdb.path=" + tsdbPath,
			"--log.level=warn",
		}
		s.proc, err = startProcess(ctx, "thanos sidecar", binary, args, nil, logOut, "http://"+s.HTTP+"/-/ready")
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Stop ends the process and waits for it. Safe to call twice.
func (s *ThanosSidecar) Stop() { s.proc.stop() }

// ThanosRuler is a running Thanos Ruler (`thanos rule`): it evaluates rule
// files over a Thanos Query and sends alerts to an Alertmanager. Every
// address is host:port on 127.0.0.1.
type ThanosRuler struct {
	HTTP string // rules and alerts API (/api/v1/rules, /api/v1/alerts), UI, /-/ready
	GRPC string // StoreAPI over its own TSDB (recorded series, ALERTS), Rules API

	proc *process
}

// URL is the base URL of the HTTP API.
func (r *ThanosRuler) URL() string { return "http://" + r.HTTP }

// StartThanosRuler runs `thanos rule` over the Thanos Query HTTP API at
// queryURL (--query), sending to the Alertmanager at alertmanagerURL
// (--alertmanagers.url; empty: none), evaluating ruleFiles (--rule-file,
// globs allowed) with its TSDB in dir/data. Its defaults are test ones:
// --eval-interval=2s (groups that set no interval) and the external label
// ruler="r1" (--label); extraArgs come last and may add to them or
// override them (kingpin keeps the last value of a single-valued flag). It
// waits until /-/ready answers 200, which Thanos Ruler does once its rule
// manager runs. ctx bounds the start only; stop it with Stop.
func StartThanosRuler(ctx context.Context, binary, dir, queryURL, alertmanagerURL string, ruleFiles, extraArgs []string, logOut io.Writer) (*ThanosRuler, error) {
	r := &ThanosRuler{}
	err := withFreshPorts(func() error {
		addrs, err := loopback.FreeAddrs(2)
		if err != nil {
			return err
		}
		r.HTTP, r.GRPC = addrs[0], addrs[1]
		args := []string{
			"rule",
			"--http-address=" + r.HTTP,
			"--grpc-address=" + r.GRPC,
			"--data-dir=" + filepath.Join(dir, "data"),
			"--query=" + queryURL,
			"--log.level=warn",
		}
		for flag, def := range map[string]string{"--eval-interval": "--eval-interval=2s", "--label": `--label=ruler="r1"`} {
			if !slices.ContainsFunc(extraArgs, func(a string) bool { return a == flag || strings.HasPrefix(a, flag+"=") }) {
				args = append(args, def)
			}
		}
		if alertmanagerURL != "" {
			args = append(args, "--alertmanagers.url="+alertmanagerURL)
		}
		for _, f := range ruleFiles {
			args = append(args, "--rule-file="+f)
		}
		args = append(args, extraArgs...)
		r.proc, err = startProcess(ctx, "thanos rule", binary, args, nil, logOut, r.URL()+"/-/ready")
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Stop ends the process and waits for it. Safe to call twice.
func (r *ThanosRuler) Stop() { r.proc.stop() }
