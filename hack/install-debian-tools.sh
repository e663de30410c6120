#!/usr/bin/env bash
# Installs the Debian packages weft's integration tests run: Prometheus 2.42
# and Alertmanager 0.25 as real backends (binaries prometheus and
# prometheus-alertmanager) and Chromium, the headless browser of the status
# page test (binary chromium). Does nothing when all three are on PATH.
set -euo pipefail

have_all() {
  command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null && command -v chromium >/dev/null
}
if have_all; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-debian-tools: need root to apt-get install prometheus prometheus-alertmanager chromium" >&2
  exit 1
fi
echo "install-debian-tools: installing prometheus, prometheus-alertmanager and chromium" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the packages' init scripts from starting services that
# would bind the default ports; tests start their own instances.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  created_policy=1
fi
apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager chromium >/dev/null
if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
have_all
