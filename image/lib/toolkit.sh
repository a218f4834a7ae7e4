#!/bin/bash
# Step 2 (cached): install rescue from THIS checkout into the cached root filesystem.
#   image/lib/toolkit.sh CACHE_DIR
# Reruns when the toolkit's sources (image/lib/stamp.py toolkit) or the rootfs changed. Seconds, so
# editing rescue/ never re-runs mmdebstrap.
#
# How: the image's Python is Debian 12's 3.11, the same interpreter as this checkout's .venv, so
# the host's pip installs into a private directory of the image (pip --target, offline, from
# wheels): rescue built from the source tree, and its pure-Python dependencies at exactly the
# versions the test suite runs with (Debian 12's python3-typer 0.7 is older than rescue needs).
# guestfs and hivex come from the image's Debian packages. Nothing is fetched inside the image.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=$1
ROOT=$CACHE/rootfs
PY=$REPO/.venv/bin/python
SRC_COMMIT=$(git -C "$REPO" log -1 --format=%H -- rescue pyproject.toml 2>/dev/null || echo unknown)
DIRTY=$(git -C "$REPO" status --porcelain -- rescue pyproject.toml 2>/dev/null | grep -q . && echo yes || echo no)
KEY=$(python3 "$HERE"/stamp.py toolkit)
if [ "$(cat "$CACHE"/toolkit.stamp 2>/dev/null)" = "$KEY" ] && [ -x "$ROOT"/usr/local/bin/rescue ]; then
	echo "toolkit: cached (key ${KEY:0:12}), not reinstalled"
	exit 0
fi
start=$(date +%s)
host_py=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ -x "$ROOT/usr/bin/python$host_py" ] || {
	echo "toolkit: the image has no python$host_py (this checkout's .venv runs $host_py); rebuild the venv with Debian's python3" >&2
	exit 1
}

# Pinned runtime dependencies: what rescue requires, at the versions installed in .venv.
PINS=$("$PY" - <<'PYEOF'
from importlib.metadata import distribution
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
seen = {}
def walk(name):
    d = distribution(name)
    key = d.metadata["Name"].lower()
    if key in seen:
        return
    seen[key] = d.version
    for r in d.requires or []:
        req = Requirement(r)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            walk(req.name)
walk("rescue")
del seen["rescue"]
print("\n".join(f"{k}=={v}" for k, v in sorted(seen.items())))
PYEOF
)
WHEELS=$CACHE/wheels
mkdir -p "$WHEELS"
if [ "$(cat "$WHEELS"/pins.txt 2>/dev/null)" != "$PINS" ]; then
	rm -f "$WHEELS"/*.whl
	echo "$PINS" > "$WHEELS"/requirements.txt
	# PyPI, on the build host, once per set of versions; binary wheels for this very interpreter.
	"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
		-d "$WHEELS" -r "$WHEELS"/requirements.txt
	echo "$PINS" > "$WHEELS"/pins.txt
fi

# rescue itself, built from a copy of the source tree (the checkout is left untouched).
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT
mkdir -p "$BUILD"/src
cp -a "$REPO"/pyproject.toml "$REPO"/README.md "$REPO"/rescue "$BUILD"/src/
find "$BUILD"/src -name __pycache__ -prune -exec rm -rf {} +
"$PY" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
	-w "$BUILD"/dist "$BUILD"/src

SITE=/usr/lib/rescue/python
rm -rf "$ROOT$SITE"
"$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile \
	--target "$ROOT$SITE" "$WHEELS"/*.whl "$BUILD"/dist/*.whl
rm -rf "$ROOT$SITE"/bin          # console scripts with the host's interpreter path: ours is below
cat > "$ROOT"/usr/local/bin/rescue <<'PYEOF'
#!/usr/bin/python3 -sP
# rescue, installed from the source tree at image build time (see /etc/rescue-release).
import sys
sys.path.insert(0, "/usr/lib/rescue/python")
from rescue.cli.main import run
run()
PYEOF
chmod 755 "$ROOT"/usr/local/bin/rescue
chroot "$ROOT" /usr/bin/python3 -m compileall -q -j0 "$SITE" >/dev/null

# A BCD hive for `rescue bcd enum` without a disk (console demo, image-test).
mkdir -p "$ROOT"/usr/share/rescue
PYTHONPATH=$REPO "$PY" "$HERE"/sample_bcd.py "$ROOT"/usr/share/rescue/sample-BCD

VERSION=$("$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import rescue; print(rescue.__version__)' "$ROOT$SITE")
cat > "$ROOT"/etc/rescue-release <<REL
NAME=rescue
VERSION=$VERSION
GIT_COMMIT=$SRC_COMMIT
GIT_DIRTY=$DIRTY
BUILT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
DEBIAN=$(cat "$ROOT"/etc/debian_version)
KERNEL=$(basename "$(ls -d "$ROOT"/lib/modules/* | sort -V | tail -n1)")
PYTHON_DEPS="$(echo $PINS)"
TOOLKIT_KEY=$KEY
REL

# The installed command must run in the image, with the image's own Python and libraries.
got=$(chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin /usr/local/bin/rescue --version)
[ "$got" = "rescue $VERSION" ] || { echo "toolkit: 'rescue --version' in the image said: $got" >&2; exit 1; }
chroot "$ROOT" /usr/bin/python3 -c 'import guestfs, hivex' || { echo "toolkit: guestfs/hivex missing in the image" >&2; exit 1; }
echo "$KEY" > "$CACHE"/toolkit.stamp
dirty_note=""; [ "$DIRTY" = yes ] && dirty_note=" + uncommitted changes"
echo "toolkit: rescue $VERSION ($SRC_COMMIT$dirty_note) installed in $(( $(date +%s) - start )) s"
