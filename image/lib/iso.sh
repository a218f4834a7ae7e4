#!/bin/bash
# Step 4: the same root filesystem as a live ISO (hybrid: CD/DVD and USB stick, BIOS and UEFI with
# Secure Boot).
#   image/lib/iso.sh CACHE_DIR OUT_DIR
# Produces OUT_DIR/rescue.iso.
#
#   /live/filesystem.squashfs   the root filesystem (mksquashfs, zstd); live-boot in the initramfs
#                               mounts it with a RAM overlay on top, so the medium is never written
#   /live/vmlinuz, initrd.img   the image's kernel and initramfs (which carries live-boot)
#   /boot/grub/grub.cfg         the menu; BIOS: GRUB i386-pc El Torito image (grub-mkimage);
#   /boot/grub/efi.img          UEFI: FAT image with Debian's signed shim + GRUB, like the disk's ESP
# xorriso is driven the way grub-mkrescue drives it (El Torito BIOS + EFI, GRUB's hybrid MBR, the EFI
# image also as a GPT/MBR partition for USB sticks). grub-mkrescue itself is not used because it
# can only embed an unsigned GRUB: no Secure Boot.
set -euo pipefail
CACHE=$1
OUT=$2
ROOT=$CACHE/rootfs
ISO=$OUT/rescue.iso
start=$(date +%s)
mkdir -p "$OUT"
rm -f "$ISO" "$ISO.tmp"
KVER=$(basename "$(ls -d "$ROOT"/lib/modules/* | sort -V | tail -n1)")
# A volume id unique to this build: live-boot finds its medium by it, GRUB by the marker file.
BUILD_ID=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ' | tr a-f A-F)
LABEL=RESCUE_$BUILD_ID
MARKER=/.disk/rescue-$BUILD_ID

STAGE=$(mktemp -d "$CACHE"/iso.XXXXXX)
WORK=$(mktemp -d "$ROOT"/tmp/iso.XXXXXX)
W=/tmp/$(basename "$WORK")
trap 'rm -rf "$STAGE" "$WORK" "$ISO.tmp"' EXIT
mkdir -p "$STAGE"/live "$STAGE"/boot/grub "$STAGE"/.disk
cp "$ROOT"/boot/vmlinuz-"$KVER" "$STAGE"/live/vmlinuz
cp "$ROOT"/boot/initrd.img-"$KVER" "$STAGE"/live/initrd.img
printf 'rescue live image %s (Debian 12, kernel %s)\n' "$BUILD_ID" "$KVER" > "$STAGE"/.disk/info
: > "$STAGE$MARKER"

# The squashfs excludes what belongs to the disk image only (its fstab and boot menu, which name
# the disk's filesystem UUID: live-boot writes its own fstab) and this step's scratch directory.
t=$(date +%s)
mksquashfs "$ROOT" "$STAGE"/live/filesystem.squashfs -noappend -quiet -no-progress \
	-comp zstd -Xcompression-level 6 -b 1M \
	-e etc/fstab boot/grub "tmp/$(basename "$WORK")"
echo "iso: squashfs in $(( $(date +%s) - t )) s"

CMDLINE="boot=live live-media=/dev/disk/by-label/$LABEL live-media-path=/live console=tty0 console=ttyS0,115200n8 earlyprintk=ttyS0,115200"
cat > "$STAGE"/boot/grub/grub.cfg <<EOF
# rescue live image boot menu (BIOS and UEFI). Serial console: ttyS0 at 115200 8N1.
serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1
terminal_input console serial
terminal_output console serial
set timeout=3
set default=0
menuentry "rescue live (Debian 12, kernel $KVER)" {
	search --no-floppy --file --set=root $MARKER
	linux /live/vmlinuz $CMDLINE
	initrd /live/initrd.img
}
menuentry "rescue live, copied to RAM (the medium can be removed; needs ~2 GiB RAM)" {
	search --no-floppy --file --set=root $MARKER
	linux /live/vmlinuz $CMDLINE toram
	initrd /live/initrd.img
}
EOF
cat > "$WORK"/early.cfg <<EOF
search --no-floppy --file --set=root $MARKER
set prefix=(\$root)/boot/grub
configfile (\$root)/boot/grub/grub.cfg
EOF

# BIOS: El Torito no-emulation image + GRUB's modules for the prompt
mkdir -p "$STAGE"/boot/grub/i386-pc
chroot "$ROOT" grub-mkimage -O i386-pc-eltorito -o "$W"/eltorito.img -c "$W"/early.cfg -p /boot/grub \
	biosdisk iso9660 part_gpt part_msdos search search_fs_file configfile normal linux echo test \
	serial terminal terminfo gzio minicmd ls cat
cp "$WORK"/eltorito.img "$STAGE"/boot/grub/i386-pc/
cp "$ROOT"/usr/lib/grub/i386-pc/*.mod "$ROOT"/usr/lib/grub/i386-pc/*.lst "$STAGE"/boot/grub/i386-pc/

# UEFI: FAT image with shim -> signed GRUB -> \EFI\debian\grub.cfg -> the ISO's grub.cfg
EFI=$STAGE/boot/grub/efi.img
mkfs.vfat -C -n RESCUE-EFI "$EFI" 8192 >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$EFI" ::/EFI ::/EFI/BOOT ::/EFI/debian
mcopy -i "$EFI" "$ROOT"/usr/lib/shim/shimx64.efi.signed ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$EFI" "$ROOT"/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed ::/EFI/BOOT/grubx64.efi
mcopy -i "$EFI" "$ROOT"/usr/lib/shim/mmx64.efi.signed ::/EFI/BOOT/mmx64.efi
mcopy -i "$EFI" "$WORK"/early.cfg ::/EFI/debian/grub.cfg
mcopy -i "$EFI" "$WORK"/early.cfg ::/EFI/BOOT/grub.cfg
# the same boot files as a directory too, for firmware that reads the ISO's file system
mkdir -p "$STAGE"/EFI/BOOT "$STAGE"/EFI/debian
cp "$ROOT"/usr/lib/shim/shimx64.efi.signed "$STAGE"/EFI/BOOT/BOOTX64.EFI
cp "$ROOT"/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed "$STAGE"/EFI/BOOT/grubx64.efi
cp "$WORK"/early.cfg "$STAGE"/EFI/debian/grub.cfg

xorriso -as mkisofs -quiet -r -J -joliet-long -iso-level 3 -V "$LABEL" \
	-b boot/grub/i386-pc/eltorito.img -no-emul-boot -boot-load-size 4 -boot-info-table \
	--grub2-boot-info --grub2-mbr "$ROOT"/usr/lib/grub/i386-pc/boot_hybrid.img \
	--efi-boot boot/grub/efi.img -efi-boot-part --efi-boot-image --protective-msdos-label \
	-o "$ISO.tmp" "$STAGE"
mv "$ISO.tmp" "$ISO"
echo "iso: $ISO built in $(( $(date +%s) - start )) s (volume $LABEL)"
