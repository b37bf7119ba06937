#!/bin/sh
# Runs the side-by-side benchmark (root): bench/run.sh [--workers N] [--seconds S] [--only bulk|conn|idle]
# bench/run.sh --only http [...] runs the HTTP and rules bench (bench/http.py) instead.
here=$(cd "$(dirname "$0")" && pwd)
py="$here/../.venv/bin/python"
[ -x "$py" ] || py=python3
if [ "$1" = "--only" ] && [ "$2" = "http" ]; then
  shift 2
  exec "$py" "$here/http.py" "$@"
fi
exec "$py" "$here/run.py" "$@"
