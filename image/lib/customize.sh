#!/bin/bash
# mmdebstrap customize hook: turns the freshly installed Debian tree ($1) into the rescue system.
# Runs on the build host as root; commands inside the tree run with `chroot "$ROOT"` (mmdebstrap has
# /proc, /sys and /dev mounted there for the hooks). Everything here is offline: the packages are
# already installed and nothing in the image reaches a network.
set -euo pipefail
ROOT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
OVERLAY=$HERE/../overlay
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@"; }

# 1. Our configuration files (getty autologin, banner, initramfs modules, no auto-activation of
#    LVM/RAID, DHCP, ...), owned by root whatever the checkout's owner is.
cp -a --no-preserve=ownership "$OVERLAY"/. "$ROOT"/

# 2. apt inside the image points at Debian's public mirror, whatever mirror built it.
rm -f "$ROOT"/etc/apt/sources.list "$ROOT"/etc/apt/sources.list.d/*
cat > "$ROOT"/etc/apt/sources.list.d/debian.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# 3. Consoles: a root shell on ttyS0 and tty1 (drop-ins in the overlay). The serial getty is
#    enabled explicitly so it runs even if the kernel command line is edited to drop console=ttyS0.
in_root systemctl enable serial-getty@ttyS0.service getty@tty1.service
in_root systemctl enable systemd-networkd.service
# Never mount anything by itself: systemd's GPT auto-generator would mount partitions of the boot
# disk by type (ESP at /efi or /boot, swap, /home, /srv).
mkdir -p "$ROOT"/etc/systemd/system-generators
ln -sfn /dev/null "$ROOT"/etc/systemd/system-generators/systemd-gpt-auto-generator
# libguestfs' fixed appliance for every process, login shell or not.
grep -q '^LIBGUESTFS_PATH=' "$ROOT"/etc/environment 2>/dev/null \
	|| echo 'LIBGUESTFS_PATH=/usr/lib/rescue/appliance' >> "$ROOT"/etc/environment
# root has no password (login is automatic on the consoles); no network service listens.
in_root passwd -d root >/dev/null
# systemd makes a fresh machine id at every boot of a copy of this image.
: > "$ROOT"/etc/machine-id
rm -f "$ROOT"/var/lib/dbus/machine-id

# 4. Initramfs with the Hyper-V drivers (overlay/etc/initramfs-tools/modules) and live-boot.
KVER=$(basename "$(ls -d "$ROOT"/lib/modules/* | sort -V | tail -n1)")
in_root update-initramfs -u -k "$KVER"

# 5. libguestfs' appliance, built now from the image's own kernel and packages (a "fixed
#    appliance", used through LIBGUESTFS_PATH): building it at first use inside the running rescue
#    system needs free space and time the rescue system does not have.
APP=/usr/lib/rescue/appliance
rm -rf "$ROOT$APP" && mkdir -p "$ROOT$APP"
in_root env SUPERMIN_KERNEL=/boot/vmlinuz-"$KVER" SUPERMIN_MODULES=/lib/modules/"$KVER" \
	supermin --build --copy-kernel -f ext2 --host-cpu x86_64 \
	-o "$APP" /usr/lib/x86_64-linux-gnu/guestfs/supermin.d
cat > "$ROOT$APP"/README.fixed <<EOF
libguestfs fixed appliance for the rescue image, built at image build time by supermin from the
image's own kernel ($KVER) and packages. Selected by LIBGUESTFS_PATH=$APP (/etc/environment,
/etc/profile.d/rescue.sh).
EOF
test -s "$ROOT$APP"/kernel && test -s "$ROOT$APP"/initrd && test -s "$ROOT$APP"/root

# 6. Leave no build residue (mmdebstrap leaves the downloaded .debs in this mode).
rm -rf "$ROOT"/tmp/* "$ROOT"/var/tmp/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/root/.cache \
	"$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
find "$ROOT"/var/log -type f -exec truncate -s0 {} +
