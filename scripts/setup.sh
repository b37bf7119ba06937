#!/usr/bin/env bash
# Installs what nsproxy's demo and tests need on a Debian machine (run as root): system packages
# (iproute2, haproxy as the reference, socat, nftables, hatop, openssl, curl, the Prometheus
# HAProxy exporter, chromium for the stats page test) and a venv in .venv with the package.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need+=(nftables)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
command -v hatop >/dev/null 2>&1 || need+=(hatop)        # tests/ops/test_tools.py
command -v openssl >/dev/null 2>&1 || need+=(openssl)    # TLS tests (s_client)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v prometheus-haproxy-exporter >/dev/null 2>&1 || need+=(prometheus-haproxy-exporter)
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # tests/ops/test_stats_page.py
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need+=(python3-venv); fi
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# The package itself, editable and interpreted; then its hot path compiled in place with mypyc
# (setup.py, src/nsproxy/hotpath.py) unless NSPROXY_PURE=1 or the extensions are current.
NSPROXY_PURE=1 .venv/bin/python -m pip install -q -e '.[test]'
if [ "${NSPROXY_PURE:-0}" != 1 ]; then
  if ! PYTHONPATH=src .venv/bin/python -c 'import sys, nsproxy; sys.exit(nsproxy.MODE != "compiled")'; then
    echo "setup.sh: compiling the hot path with mypyc (1-2 minutes)" >&2
    if ! .venv/bin/python setup.py -q build_ext --inplace >build-hotpath.log 2>&1; then
      echo "setup.sh: compiling failed (see build-hotpath.log): nsproxy runs interpreted" >&2
    fi
  fi
fi
