#!/bin/bash
# Part of `make floor`: when an interpreter of the oldest supported Python is on this machine
# (python3.9 on PATH, or pyenv's), install rescue into a venv of it with pip, as the pip route of
# README "Install" does (typer and rich resolved from the ranges in pyproject.toml for that Python),
# and run what needs no guestfs/hivex bindings (they exist only for the distribution's python3):
# --version, --help and the help of diagnose and fix (typer reads every command's signature),
# doctor --no-launch --json, and a compile of every module. Skipped, saying so, when no such
# interpreter exists: vermin still ran.
#   tools/floor_smoke.sh VERSION
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
V=$1
PY=$(command -v "python$V" 2>/dev/null || true)
if [ -z "$PY" ] || ! "$PY" -c 'import sys' 2>/dev/null; then
	for c in "$HOME"/.pyenv/versions/"$V".*/bin/python"$V"; do [ -x "$c" ] && PY=$c; done
fi
if [ -z "$PY" ] || ! "$PY" -c 'import sys' 2>/dev/null; then
	echo "floor: no Python $V interpreter here; only the static check ran"
	exit 0
fi
VENV=$REPO/.cache/py-floor
# pip install of the checkout (its dependencies resolved for this Python), redone only when
# pyproject.toml changes; the code run below is the checkout's own (PYTHONPATH), so editing rescue/
# costs no reinstall.
KEY=$(cat "$REPO"/pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$VENV"/.key 2>/dev/null)" != "$KEY" ]; then
	rm -rf "$VENV"
	"$PY" -m venv "$VENV"
	"$VENV"/bin/pip install -q --disable-pip-version-check "$REPO" 2>&1 | grep -v '^WARNING: Location' || true
	echo "$KEY" > "$VENV"/.key
fi
export PYTHONPATH=$REPO
R() { "$VENV"/bin/python -c 'from rescue.cli.main import run; run()' "$@"; }
got=$(R --version)
[ "$got" = "rescue $("$VENV"/bin/python -c 'import rescue; print(rescue.__version__)')" ] || {
	echo "floor: Python $V: rescue --version said: $got" >&2; exit 1; }
R --help > /dev/null
# diagnose and fix build their options from the scenario registry on first use, not for --help.
R diagnose --help > /dev/null
R fix no-memory --help > /dev/null
set +e
R doctor --no-launch --json > "$VENV"/doctor.json 2> "$VENV"/doctor.err
code=$?
set -e
# No guestfs/hivex bindings for this interpreter: doctor must say so cleanly (exit 10), not crash.
"$VENV"/bin/python - "$VENV"/doctor.json "$code" <<'PYEOF'
import json, sys
data = json.load(open(sys.argv[1]))
checks = {c["id"]: c for c in data["checks"]}
assert int(sys.argv[2]) == 10 and checks["bindings"]["status"] == "fail", (sys.argv[2], checks["bindings"])
PYEOF
# Every module compiles with this interpreter (nothing written: no .pyc in the checkout).
"$VENV"/bin/python - "$REPO" <<'PYEOF'
import pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1], "rescue").rglob("*.py")):
    compile(path.read_text(encoding="utf-8"), str(path), "exec", dont_inherit=True)
PYEOF
deps=$("$VENV"/bin/pip list --disable-pip-version-check 2>/dev/null | awk 'tolower($1) ~ /^(typer|rich|click)$/ {printf "%s %s, ", $1, $2}')
echo "floor: rescue runs on $("$PY" -c 'import platform; print(platform.python_version())') (${deps%, })"
