#!/usr/bin/env bash
# Return routing for `source ... usesrc` (docs/transparent.md), and a demo of seed example 3.
#
#   scripts/tproxy-lab.sh route NS SUBNET            # `local` route for SUBNET inside NS
#   scripts/tproxy-lab.sh route NS SUBNET --tproxy   # TPROXY recipe inside NS (nft + ip rule)
#   scripts/tproxy-lab.sh demo [--tproxy]            # namespaces, nsproxy, one PROXY v2 client
set -euo pipefail
cd "$(dirname "$0")/.."

route() {  # route NS SUBNET [--tproxy]
  local ns=$1 subnet=$2 mode=${3:-} fam=-4 any=0.0.0.0/0
  case $subnet in *:*) fam=-6 any=::/0 ;; esac
  if [ "$mode" != --tproxy ]; then
    ip -n "$ns" "$fam" route add local "$subnet" dev lo
    return
  fi
  ip netns exec "$ns" nft -f - <<'EOF'
table inet nsp_tproxy {
  chain divert {
    type filter hook prerouting priority mangle; policy accept;
    meta l4proto tcp socket transparent 1 meta mark set 1 accept
  }
}
EOF
  ip -n "$ns" "$fam" rule add fwmark 1 lookup 100
  ip -n "$ns" "$fam" route add local "$any" dev lo table 100
}

demo_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$EDGE" 2>/dev/null || true
  ip netns del "$SRV" 2>/dev/null || true
  [ -z "$CFG" ] || rm -f "$CFG"
}

demo() {  # demo [--tproxy]
  ./scripts/setup.sh
  EDGE="nsp-tproxy-$$-edge" SRV="nsp-tproxy-$$-server" PIDS=() CFG=""
  trap demo_cleanup EXIT
  local py=.venv/bin/python mode=${1:-} dst=10.77.0.1 edge=$EDGE srv=$SRV
  ip netns add "$edge"
  ip -n "$edge" link set lo up
  if [ "$mode" = --tproxy ]; then
    # nsproxy's server socket lives in $edge; the server sits behind it in $srv and routes
    # replies for the clients' network back through $edge, which diverts them to the socket.
    ip netns add "$srv"
    ip -n "$srv" link set lo up
    ip link add "nspe$$" type veth peer name "nsps$$"
    ip link set "nspe$$" netns "$edge"
    ip link set "nsps$$" netns "$srv"
    ip -n "$edge" addr add 10.78.0.1/24 dev "nspe$$"
    ip -n "$srv" addr add 10.78.0.2/24 dev "nsps$$"
    ip -n "$edge" link set "nspe$$" up
    ip -n "$srv" link set "nsps$$" up
    ip -n "$srv" route add 198.18.5.0/24 via 10.78.0.1
    route "$edge" 198.18.5.0/24 --tproxy
    dst=10.78.0.2
  else
    srv=$edge  # the server lives in the namespace the connection is made in
    ip -n "$srv" addr add "$dst/32" dev lo
    route "$srv" 198.18.5.0/24
  fi
  ip netns exec "$srv" "$py" -c '
import socket, sys
s = socket.create_server((sys.argv[1], 8080))
c, peer = s.accept()
c.sendall(f"the server saw {peer[0]}:{peer[1]}\n".encode())
c.close()' "$dst" &
  PIDS+=($!)
  CFG=$(mktemp /tmp/nsp-tproxy-XXXXXX.cfg)
  cat >"$CFG" <<EOF
global
  log stdout format raw local0
defaults
  log global
  option tcplog
  timeout connect 1s
  timeout client 5s
  timeout server 5s
namespace_list
 namespace $edge

frontend f_example
 bind 127.0.0.1:9990 accept-proxy
 default_backend b_example

backend b_example
 mode tcp
 source 0.0.0.0 usesrc clientip
 server snodes * namespace *
EOF
  "$py" -m nsproxy -db -f "$CFG" &
  PIDS+=($!)
  for _ in $(seq 100); do
    ss -Hltn 'sport = :9990' | grep -q 9990 && break
    sleep 0.05
  done
  sleep 0.2
  "$py" - "$edge" "$dst" <<'EOF'
import socket, sys
from nsproxy import proxy_protocol as pp
ns, dst = sys.argv[1], sys.argv[2]
c = socket.create_connection(("127.0.0.1", 9990), timeout=10)
c.sendall(pp.encode_v2(("198.18.5.7", 40001), (dst, 8080), tlvs=[pp.Tlv(0x30, ns.encode())]))
print("client (PROXY src 198.18.5.7:40001) got:", c.recv(1024).decode().strip())
EOF
  sleep 0.2
}

case ${1:-} in
  route) shift; route "$@" ;;
  demo) shift; demo "$@" ;;
  *) sed -n '2,6p' "$0" >&2; exit 2 ;;
esac
