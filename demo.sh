#!/usr/bin/env bash
# Demo: two tenant namespaces with identical addresses (127.0.0.1:80 -> 127.0.0.1:8000),
# one nsproxy serving both; each tenant's client reaches only its own server.
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh
PY=.venv/bin/python
export NSP_PREFIX="nsp-demo-$$-"
A="${NSP_PREFIX}tenant-a"; B="${NSP_PREFIX}tenant-b"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT
for ns in "$A" "$B"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
server() {  # a tiny server inside namespace $1 that greets with $2
  ip netns exec "$1" "$PY" -c '
import socket, sys
s = socket.create_server(("127.0.0.1", 8000))
while True:
    c, peer = s.accept()
    with c:
        data = c.recv(1024)
        c.sendall(b"hello from " + sys.argv[1].encode() + b", you sent: " + data)
' "$2" &
  pids+=($!)
}
server "$A" "tenant A's server"
server "$B" "tenant B's server"
echo "== nsproxy -c -f examples/tenants.cfg"
$PY -m nsproxy -c -f examples/tenants.cfg
$PY -m nsproxy -db -f examples/tenants.cfg &
pids+=($!)
for _ in $(seq 50); do
  if ip netns exec "$A" ss -Hltn 'sport = :80' | grep -q 80 && \
     ip netns exec "$B" ss -Hltn 'sport = :80' | grep -q 80; then break; fi
  sleep 0.1
done
client() {
  ip netns exec "$1" "$PY" -c '
import socket, sys
c = socket.create_connection(("127.0.0.1", 80), timeout=5)
c.sendall(sys.argv[1].encode())
print(c.recv(1024).decode())
' "$2"
}
echo "== tenant A (namespace $A) connects to 127.0.0.1:80:"
client "$A" "ping from A"
echo "== tenant B (namespace $B) connects to 127.0.0.1:80:"
client "$B" "ping from B"
sleep 0.3
echo "== done: same address in both namespaces, each tenant reached its own server."
echo
echo "== the seed's three examples, exactly as written (private lab: scripts/seed_lab.py):"
"$PY" scripts/seed_lab.py
