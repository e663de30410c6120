#!/usr/bin/env bash
# Builds a command from a Go module's own source into a cache directory, once.
# `go install module@version` cannot be used for Jaeger or Thanos: their
# go.mod files have replace directives, which the go command refuses for
# installs by version. So the module is downloaded, copied out of the module
# cache (which is read-only) and built in place with its own go.mod.
#
# Usage: [BUILD_TAGS=a,b] hack/build-module-tool.sh NAME MODULE VERSION PACKAGE [BIN_DIR]
#   e.g. BUILD_TAGS=netgo,slicelabels hack/build-module-tool.sh thanos github.com/thanos-io/thanos v0.42.4 ./cmd/thanos
# BUILD_TAGS are the tags the project's own release build uses (Thanos's
# .promu.yml: netgo,slicelabels; without slicelabels its labelpb package
# reads Prometheus label sets as garbage). The version is stamped as the
# project's release build stamps it (prometheus/common/version), so
# `NAME --version` tells which build is cached.
# Prints the binary's path ($BIN_DIR/NAME-VERSION); the build's own output
# goes to stderr.
set -euo pipefail

if [ $# -lt 4 ]; then
  echo "usage: $0 NAME MODULE VERSION PACKAGE [BIN_DIR]" >&2
  exit 2
fi
name=$1 module=$2 version=$3 pkg=$4
bin_dir="${5:-${WEFT_TOOLS_DIR:-$HOME/.cache/weft/tools}}"
bin="$bin_dir/$name-$version"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$bin_dir"
# Download with GOFLAGS=-mod=mod so the go.mod of the caller is not consulted.
mod_dir=$(cd / && GOFLAGS=-mod=mod go mod download -json "$module@$version" 2>/dev/null |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$mod_dir" ] || [ ! -d "$mod_dir" ]; then
  echo "build-module-tool: module download of $module@$version failed" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$mod_dir" "$work/src"
chmod -R u+w "$work/src"
echo "build-module-tool: building $name $version from $module (minutes on a cold cache)" >&2
ldflags="-X github.com/prometheus/common/version.Version=${version#v} -X github.com/prometheus/common/version.Revision=module-$version"
(cd "$work/src" && GOFLAGS=-mod=mod go build -trimpath -tags "${BUILD_TAGS:-}" -ldflags "$ldflags" -o "$bin.tmp" "$pkg") >&2
mv "$bin.tmp" "$bin"
echo "$bin"
