#!/bin/bash
# `make image`: build the bootable rescue image from Debian packages and this checkout.
#   image/build.sh            (run as root: mmdebstrap --mode=root, chroot)
# Steps, each cached under image/cache/ by a key of its inputs (image/lib/stamp.py):
#   1. rootfs   mmdebstrap + customize.sh + libguestfs appliance   (minutes; key: packages + recipe)
#   2. toolkit  rescue from this checkout into the rootfs           (seconds; key: rescue/ + rootfs)
#   3. disk     GPT raw disk + fixed VHD                            (reruns when 1 or 2 changed)
#   4. iso      live ISO                                            (reruns when 1 or 2 changed)
# Outputs in image/out/: rescue.raw, rescue.vhd, rescue.iso, SHA256SUMS, build-times.txt.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${IMAGE_CACHE:-$HERE/cache}
OUT=${IMAGE_OUT:-$HERE/out}
APT_PACKAGES=${IMAGE_APT_PACKAGES:-mmdebstrap mtools dosfstools e2fsprogs fdisk squashfs-tools xorriso qemu-utils qemu-system-x86 ovmf}

if [ "$(id -u)" != 0 ]; then
	echo "make image: needs root (mmdebstrap builds the root filesystem with real root-owned files," \
		"and the boot files are prepared with chroot). Run it as root, e.g. sudo make image." >&2
	exit 1
fi

# Build tools, installed once (idempotent: only what is missing).
missing=""
for p in $APT_PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "image: installing build tools:$missing"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

mkdir -p "$CACHE" "$OUT"
TIMES=$OUT/build-times.txt
: > "$TIMES.new"
step() {  # step NAME COMMAND...: run, time, record
	local name=$1 t0 t1
	shift
	t0=$(date +%s.%N)
	"$@"
	t1=$(date +%s.%N)
	printf '%-8s %6.1f s\n' "$name" "$(awk "BEGIN{print $t1 - $t0}")" >> "$TIMES.new"
}

step rootfs bash "$HERE"/lib/rootfs.sh "$CACHE"
step toolkit bash "$HERE"/lib/toolkit.sh "$CACHE"
KEY=$(cat "$CACHE"/toolkit.stamp)

# Outputs are rebuilt only when the tree they were made from changed (its key is the toolkit key,
# which includes the rootfs key).
if [ -f "$OUT"/rescue.raw ] && [ -f "$OUT"/rescue.vhd ] && [ "$(cat "$OUT"/.disk.stamp 2>/dev/null)" = "$KEY" ]; then
	echo "disk: cached, not reassembled"
else
	rm -f "$OUT"/.disk.stamp "$OUT"/SHA256SUMS
	step disk bash "$HERE"/lib/disk.sh "$CACHE" "$OUT"
	echo "$KEY" > "$OUT"/.disk.stamp
fi
if [ -f "$OUT"/rescue.iso ] && [ "$(cat "$OUT"/.iso.stamp 2>/dev/null)" = "$KEY" ]; then
	echo "iso: cached, not rebuilt"
else
	rm -f "$OUT"/.iso.stamp "$OUT"/SHA256SUMS
	step iso bash "$HERE"/lib/iso.sh "$CACHE" "$OUT"
	echo "$KEY" > "$OUT"/.iso.stamp
fi
if [ ! -s "$OUT"/SHA256SUMS ]; then
	(cd "$OUT" && sha256sum rescue.raw rescue.vhd rescue.iso > SHA256SUMS.new && mv SHA256SUMS.new SHA256SUMS)
fi
# keep the timings of the last run that did real work
if grep -qE '^(disk|iso)' "$TIMES.new" || [ ! -s "$TIMES" ]; then mv "$TIMES.new" "$TIMES"; else rm -f "$TIMES.new"; fi

echo
echo "rescue image ($(grep -E '^(VERSION|GIT_COMMIT|GIT_DIRTY)=' "$CACHE"/rootfs/etc/rescue-release | tr '\n' ' '))"
printf '  %-44s %10s  %s\n' file MiB sha256
while read -r sum name; do
	printf '  %-44s %10s  %s\n' "$OUT/$name" "$(( $(stat -c %s "$OUT/$name") / 1048576 ))" "$sum"
done < "$OUT"/SHA256SUMS
qemu-img info -f vpc --output=json "$OUT"/rescue.vhd | python3 -c '
import json, sys
i = json.load(sys.stdin)
s = i["virtual-size"]
ok = "a whole number of MiB" if s % 1048576 == 0 else "NOT a whole number of MiB: Azure will refuse it"
print("  rescue.vhd: %s (fixed), virtual size %d bytes = %g MiB, %s" % (i["format"], s, s / 1048576, ok))
sys.exit(0 if s % 1048576 == 0 else 1)'
echo "  step times of the last build: $(tr -s ' ' < "$TIMES" | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
