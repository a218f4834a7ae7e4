#!/bin/bash
# Step 2 (cached): install rescue from THIS checkout into the cached root filesystem.
#   image/lib/toolkit.sh CACHE_DIR
# Reruns when the toolkit's sources (image/lib/stamp.py toolkit) or the rootfs changed. Seconds, so
# editing rescue/ never re-runs mmdebstrap.
#
# How: the same Debian package users install (`make deb`, tools/build_deb.sh), built from the
# checkout on the build host and installed in the image with apt, offline: its dependencies
# (python3-guestfs, python3-hivex, libguestfs-tools, ntfs-3g, qemu-utils, python3-click,
# python3-rich, ...) are in image/packages.txt, so apt finds every one already installed. The
# image therefore runs exactly what `apt install ./rescue_*.deb` gives on any Debian 12.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=$1
ROOT=$CACHE/rootfs
PY=$REPO/.venv/bin/python
SRC_COMMIT=$(git -C "$REPO" log -1 --format=%H -- rescue pyproject.toml debian 2>/dev/null || echo unknown)
DIRTY=$(git -C "$REPO" status --porcelain -- rescue pyproject.toml debian 2>/dev/null | grep -q . && echo yes || echo no)
KEY=$(python3 "$HERE"/stamp.py toolkit)
if [ "$(cat "$CACHE"/toolkit.stamp 2>/dev/null)" = "$KEY" ] && [ -x "$ROOT"/usr/bin/rescue ]; then
	echo "toolkit: cached (key ${KEY:0:12}), not reinstalled"
	exit 0
fi
start=$(date +%s)
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@"; }

# The package, built from the checkout (the checkout itself is left untouched).
DEBS=$CACHE/deb
rm -rf "$DEBS"
bash "$REPO"/tools/build_deb.sh "$DEBS"
DEB=$(ls "$DEBS"/rescue_*_all.deb)

# A root filesystem cached from before the package existed has rescue installed by hand: remove it.
rm -rf "$ROOT"/usr/lib/rescue/python "$ROOT"/usr/local/bin/rescue
cp "$DEB" "$ROOT"/tmp/rescue.deb
# --reinstall: a rebuilt package of the same version must replace the one already there. The
# image has no package lists: apt resolves the dependencies from what is installed, offline.
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall --no-install-recommends \
	/tmp/rescue.deb > "$CACHE"/toolkit-apt.log 2>&1 || {
	tail -n 30 "$CACHE"/toolkit-apt.log >&2
	echo "toolkit: apt could not install $(basename "$DEB") in the image (log above)" >&2
	exit 1
}
rm -f "$ROOT"/tmp/rescue.deb "$ROOT"/var/cache/apt/*.bin

# A BCD hive for `rescue bcd enum` without a disk (console demo, image-test).
mkdir -p "$ROOT"/usr/share/rescue
PYTHONPATH=$REPO "$PY" "$HERE"/sample_bcd.py "$ROOT"/usr/share/rescue/sample-BCD

VERSION=$(in_root dpkg-query -W -f='${Version}' rescue)
TYPER=$(ls -d "$ROOT"/usr/share/rescue/typer-*.dist-info | sed 's/.*typer-\(.*\)\.dist-info/\1/')
DEPS=$(in_root dpkg-query -W -f='${Package}=${Version} ' python3-click python3-rich python3-shellingham \
	python3-typing-extensions python3-guestfs python3-hivex)
cat > "$ROOT"/etc/rescue-release <<REL
NAME=rescue
VERSION=$VERSION
GIT_COMMIT=$SRC_COMMIT
GIT_DIRTY=$DIRTY
BUILT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
DEBIAN=$(cat "$ROOT"/etc/debian_version)
KERNEL=$(basename "$(ls -d "$ROOT"/lib/modules/* | sort -V | tail -n1)")
PACKAGE=$(basename "$DEB") sha256:$(sha256sum "$DEB" | cut -c1-64)
PYTHON_DEPS="typer==$TYPER (vendored) ${DEPS% }"
TOOLKIT_KEY=$KEY
REL

# The installed command must run in the image, with the image's own Python and libraries.
got=$(in_root /usr/bin/rescue --version)
[ "$got" = "rescue $VERSION" ] || { echo "toolkit: 'rescue --version' in the image said: $got" >&2; exit 1; }
in_root /usr/bin/python3 -c 'import guestfs, hivex' || { echo "toolkit: guestfs/hivex missing in the image" >&2; exit 1; }
echo "$KEY" > "$CACHE"/toolkit.stamp
dirty_note=""; [ "$DIRTY" = yes ] && dirty_note=" + uncommitted changes"
echo "toolkit: rescue $VERSION ($SRC_COMMIT$dirty_note) installed from $(basename "$DEB") in $(( $(date +%s) - start )) s"
