#!/bin/bash
# Step 1 (cached): the rescue system's root filesystem as a directory, from Debian packages only.
#   image/lib/rootfs.sh CACHE_DIR
# Produces CACHE_DIR/rootfs/ and CACHE_DIR/rootfs.stamp (the key of image/lib/stamp.py rootfs).
# Reruns only when that key changed or the tree is missing.
#
# mmdebstrap (not debootstrap, not mkosi): one command, resolves all packages with apt in one go,
# runs our customize hook inside the tree, and needs no loop device or mount of an image file
# (mkosi 14 fails in this sandbox, whose kernel has no vfat module).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=$1
KEY=$(python3 "$HERE"/stamp.py rootfs)
if [ -d "$CACHE"/rootfs ] && [ "$(cat "$CACHE"/rootfs.stamp 2>/dev/null)" = "$KEY" ]; then
	echo "rootfs: cached (key ${KEY:0:12}), not rebuilt"
	exit 0
fi

# Use the build host's own Debian sources (same mirror, same snapshot, and the mirror this machine
# can reach); customize.sh then points the image's apt at Debian's public mirror.
SOURCES=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	[ -s "$f" ] && grep -qE '^[^#]*debian' "$f" && SOURCES+=("$f")
done
[ ${#SOURCES[@]} -gt 0 ] || SOURCES=("http://deb.debian.org/debian")
PACKAGES=$(grep -v '^\s*#' "$HERE"/../packages.txt | tr -s ' \n' ',' | sed 's/^,//; s/,$//')

echo "rootfs: building with mmdebstrap (key ${KEY:0:12}; sources: ${SOURCES[*]})"
start=$(date +%s)
rm -rf "$CACHE"/rootfs.new "$CACHE"/rootfs.stamp
mkdir -p "$CACHE"
# --mode=root: we are root and the tree must hold real root-owned files for mke2fs -d / mksquashfs.
# Documentation and translations are left out of the image (the appliance excludes them anyway).
mmdebstrap --mode=root --variant=minbase --format=directory \
	--include="$PACKAGES" \
	--aptopt='Acquire::Retries "3"' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/info/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--customize-hook="bash $HERE/customize.sh \"\$1\"" \
	bookworm "$CACHE"/rootfs.new "${SOURCES[@]}"
rm -rf "$CACHE"/rootfs "$CACHE"/toolkit.stamp
mv "$CACHE"/rootfs.new "$CACHE"/rootfs
echo "$KEY" > "$CACHE"/rootfs.stamp
echo "rootfs: built in $(( $(date +%s) - start )) s, $(du -sh --apparent-size "$CACHE"/rootfs | cut -f1) apparent"
