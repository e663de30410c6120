#!/usr/bin/env bash
# Builds the Jaeger v2 all-in-one binary from its module source into a cache
# directory, once. `go install` cannot be used: Jaeger's go.mod has replace
# directives, which the go command refuses for installs by version.
#
# Usage: hack/install-jaeger.sh [BIN_DIR]   (prints the binary's path; the
# build's own output goes to stderr)
set -euo pipefail

version="${JAEGER_VERSION:-v1.76.0}"
bin_dir="${1:-${WEFT_TOOLS_DIR:-$HOME/.cache/weft/tools}}"
bin="$bin_dir/jaeger-$version"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$bin_dir"
# Download with GOFLAGS=-mod=mod so the go.mod of the caller is not consulted.
mod_dir=$(cd / && GOFLAGS=-mod=mod go mod download -json "github.com/jaegertracing/jaeger@$version" 2>/dev/null |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$mod_dir" ] || [ ! -d "$mod_dir" ]; then
  echo "install-jaeger: module download of github.com/jaegertracing/jaeger@$version failed" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$mod_dir" "$work/jaeger"
chmod -R u+w "$work/jaeger"
echo "install-jaeger: building jaeger $version (a few minutes on a cold cache)" >&2
(cd "$work/jaeger" && GOFLAGS=-mod=mod go build -trimpath -o "$bin.tmp" ./cmd/jaeger) >&2
mv "$bin.tmp" "$bin"
echo "$bin"
