#!/bin/sh
# Runs the side-by-side benchmark (root): bench/run.sh [--workers N] [--seconds S] [--only bulk|conn|idle]
here=$(cd "$(dirname "$0")" && pwd)
py="$here/../.venv/bin/python"
[ -x "$py" ] || py=python3
exec "$py" "$here/run.py" "$@"
