#!/bin/bash
# `make deb`: build dist/rescue_<version>_all.deb from this checkout with Debian's own tools
# (dpkg-buildpackage, debhelper, dh-python; debian/ holds the packaging).
#   tools/build_deb.sh [OUTDIR]         (default: dist/)
# The source is copied to a temporary directory first: the checkout is never touched. The one
# thing Debian 12 lacks, a recent enough typer (python3-typer is 0.7), is vendored from a wheel
# pinned by version and sha256 below, downloaded once from PyPI into .cache/deb/ on the build host;
# nothing is fetched during the package build itself.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$REPO/dist}
# typer 0.20.1: the newest release whose dependencies Debian 12 ships (click >= 8.0, rich,
# shellingham, typing-extensions); later ones need click >= 8.2.1 or annotated-doc. Pure Python.
TYPER_VERSION=0.20.1
TYPER_SHA256=4b3bde918a67c8e03d861aa02deca90a95bbac572e71b1b9be56ff49affdb5a8
TYPER_WHEEL=typer-$TYPER_VERSION-py3-none-any.whl
CACHE=$REPO/.cache/deb
start=$(date +%s)

VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$REPO"/rescue/__init__.py)
[ -n "$VERSION" ] || { echo "deb: no __version__ in rescue/__init__.py" >&2; exit 1; }

mkdir -p "$CACHE"
if ! echo "$TYPER_SHA256  $CACHE/$TYPER_WHEEL" | sha256sum -c --status 2>/dev/null; then
	rm -f "$CACHE/$TYPER_WHEEL"
	PIP=("$REPO"/.venv/bin/python -m pip)
	[ -x "$REPO"/.venv/bin/python ] || PIP=(python3 -m pip)
	"${PIP[@]}" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
		-d "$CACHE" "typer==$TYPER_VERSION"
	echo "$TYPER_SHA256  $CACHE/$TYPER_WHEEL" | sha256sum -c --status ||
		{ echo "deb: $TYPER_WHEEL does not match its pinned sha256" >&2; exit 1; }
fi

BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT
SRC=$BUILD/rescue-$VERSION
mkdir -p "$SRC"/tools
cp -a "$REPO"/debian "$REPO"/rescue "$REPO"/README.md "$REPO"/pyproject.toml "$SRC"/
cp -a "$REPO"/tools/cli_docs.py "$SRC"/tools/
find "$SRC" -name __pycache__ -prune -exec rm -rf {} +
mkdir -p "$SRC"/debian/vendor
cp "$CACHE/$TYPER_WHEEL" "$SRC"/debian/vendor/
# The changelog's version is rescue's own (a native package), so the two can never disagree.
# Its date is the last commit's, for a reproducible build.
WHEN=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)
cat > "$SRC"/debian/changelog <<CL
rescue ($VERSION) unstable; urgency=medium

  * Built from the rescue source tree ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)).

 -- rescue developers <rescue@localhost>  $(date -u -R -d "@$WHEN")
CL
# Debian's python3, not one a version manager put first on PATH.
(cd "$SRC" && PATH=/usr/sbin:/usr/bin:/sbin:/bin SOURCE_DATE_EPOCH=$WHEN dpkg-buildpackage -b -us -uc --no-sign >"$BUILD"/build.log 2>&1) || {
	tail -n 40 "$BUILD"/build.log >&2
	echo "deb: dpkg-buildpackage failed (log above)" >&2
	exit 1
}
mkdir -p "$OUT"
DEB=rescue_${VERSION}_all.deb
mv "$BUILD/$DEB" "$OUT/$DEB"
echo "deb: $OUT/$DEB ($(du -k "$OUT/$DEB" | cut -f1) KiB) in $(( $(date +%s) - start )) s"
