#!/bin/bash
# Step 3: assemble the bootable GPT disk from the cached root filesystem, then the fixed VHD.
#   image/lib/disk.sh CACHE_DIR OUT_DIR
# Produces OUT_DIR/rescue.raw and OUT_DIR/rescue.vhd.
#
# No mounts and no loop devices (this sandbox's kernel has neither vfat nor loop set-up rights, and a
# build must not need them): every filesystem is written into a plain file by its own mkfs tool.
#   LBA 2048   p1  BIOS boot (1 MiB)  GRUB i386-pc core.img, loaded by GRUB's boot.img in the MBR
#   2 MiB      p2  EFI system (64 MiB, FAT16 made with mkfs.vfat -C, filled with mtools):
#                  \EFI\BOOT\BOOTX64.EFI = Debian's signed shim, grubx64.efi = Debian's signed GRUB
#                  (UEFI with Secure Boot on, Microsoft's UEFI CA: Azure Gen2 "Trusted launch")
#   66 MiB     p3  root, ext4 written by `mke2fs -d ROOTFS -E offset=...` straight into the disk file
# Both firmware paths end in the same /boot/grub/grub.cfg on the root filesystem.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=$1
OUT=$2
ROOT=$CACHE/rootfs
RAW=$OUT/rescue.raw
VHD=$OUT/rescue.vhd
MiB=$((1024 * 1024))
start=$(date +%s)
mkdir -p "$OUT"
rm -f "$RAW" "$VHD" "$RAW.tmp"

KVER=$(basename "$(ls -d "$ROOT"/lib/modules/* | sort -V | tail -n1)")
ROOT_UUID=$(cat /proc/sys/kernel/random/uuid)
ESP_ID=$(printf '%08X' $(( $(od -An -N4 -tu4 /dev/urandom) )))
ESP_ID=${ESP_ID:0:4}-${ESP_ID:4:4}

# --- files that name this build's filesystems (written into the tree before it is copied) ---
cat > "$ROOT"/etc/fstab <<EOF
# rescue image: only its own root filesystem. Attached disks are never mounted by the system.
UUID=$ROOT_UUID	/	ext4	errors=remount-ro	0	1
EOF
CMDLINE="console=tty0 console=ttyS0,115200n8 earlyprintk=ttyS0,115200"
mkdir -p "$ROOT"/boot/grub
cat > "$ROOT"/boot/grub/grub.cfg <<EOF
# rescue image boot menu (BIOS and UEFI both end here). Serial console: ttyS0 at 115200 8N1.
serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1
terminal_input console serial
terminal_output console serial
set timeout=3
set default=0
menuentry "rescue (Debian 12, kernel $KVER)" {
	search --no-floppy --fs-uuid --set=root $ROOT_UUID
	linux /boot/vmlinuz-$KVER root=UUID=$ROOT_UUID ro $CMDLINE
	initrd /boot/initrd.img-$KVER
}
EOF
# GRUB modules on the root filesystem, for commands typed at the GRUB prompt (BIOS only: the
# signed UEFI GRUB is monolithic and loads no module under Secure Boot).
rm -rf "$ROOT"/boot/grub/i386-pc && cp -a "$ROOT"/usr/lib/grub/i386-pc "$ROOT"/boot/grub/

# --- BIOS: GRUB core image with an embedded config that finds the root filesystem by UUID ---
WORK=$(mktemp -d "$ROOT"/tmp/disk.XXXXXX)
trap 'rm -rf "$WORK" "$RAW.tmp"' EXIT
W=/tmp/$(basename "$WORK")          # the same directory, seen from inside the tree
cat > "$WORK"/early.cfg <<EOF
search.fs_uuid $ROOT_UUID root
set prefix=(\$root)/boot/grub
configfile (\$root)/boot/grub/grub.cfg
EOF
# the image's own grub-mkimage and modules, so host and image GRUB versions cannot differ
chroot "$ROOT" grub-mkimage -O i386-pc -o "$W"/core.img -c "$W"/early.cfg -p /boot/grub \
	biosdisk part_gpt part_msdos ext2 search search_fs_uuid configfile normal linux echo test \
	serial terminal terminfo gzio minicmd ls cat
CORE_SECTORS=$(( ($(stat -c %s "$WORK"/core.img) + 511) / 512 ))
[ "$CORE_SECTORS" -le 2048 ] || { echo "disk: core.img ($CORE_SECTORS sectors) exceeds the BIOS boot partition" >&2; exit 1; }

# --- sizes ---
ESP_MIB=64
USED_MIB=$(( $(du -skx "$ROOT" | cut -f1) / 1024 ))
# ext4 metadata and journal (~5 %) plus 1 GiB free for the operator's work (hive copies in /tmp)
ROOT_MIB=$(( (USED_MIB * 105 / 100 + 1024 + 63) / 64 * 64 ))
TOTAL_MIB=$(( 2 + ESP_MIB + ROOT_MIB + 1 ))   # + 1 MiB: room for the backup GPT at the end
truncate -s $((TOTAL_MIB * MiB)) "$RAW.tmp"

# --- partition table ---
sfdisk --quiet --no-reread --no-tell-kernel "$RAW.tmp" <<EOF
label: gpt
unit: sectors
first-lba: 34
start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name="BIOS boot"
start=4096, size=$((ESP_MIB * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system"
start=$(( (2 + ESP_MIB) * 2048 )), size=$((ROOT_MIB * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="rescue root"
EOF

# --- MBR boot code + core.img (what grub-bios-setup does, done on a file) ---
python3 - "$RAW.tmp" "$ROOT"/usr/lib/grub/i386-pc/boot.img "$WORK"/core.img <<'PY'
import struct, sys
disk, boot_img, core_img = sys.argv[1:]
CORE_LBA = 2048                       # first sector of the BIOS boot partition
boot = bytearray(open(boot_img, "rb").read())
core = bytearray(open(core_img, "rb").read())
assert len(boot) == 512
# boot.img (grub-core/boot/i386/pc/boot.S): where to load core.img from, which drive (0xff: the
# one the BIOS booted from), and the floppy-drive check replaced by NOPs, as grub-bios-setup does
# for hard disks.
struct.pack_into("<Q", boot, 0x5C, CORE_LBA)
boot[0x64] = 0xFF
boot[0x66:0x68] = b"\x90\x90"
# diskboot.img, the first sector of core.img, ends with a block list {u64 start, u16 len, u16 seg}
# giving the rest of core.img: grub-mkimage filled len, the start is ours.
start, length, seg = struct.unpack_from("<QHH", core, 512 - 12)
sectors = (len(core) + 511) // 512
assert length == sectors - 1 and seg == 0x820, (start, length, seg, sectors)
struct.pack_into("<Q", core, 512 - 12, CORE_LBA + 1)
with open(disk, "r+b") as f:
    mbr = bytearray(f.read(512))
    mbr[:440] = boot[:440]            # keep disk signature, protective MBR entry and 55AA
    f.seek(0); f.write(mbr)
    f.seek(CORE_LBA * 512); f.write(core)
PY

# --- ESP: FAT16 image file, filled with mtools, copied into p2 ---
ESP=$WORK/esp.img
mkfs.vfat -C -F 16 -n RESCUE-ESP -i "${ESP_ID/-/}" "$ESP" $((ESP_MIB * 1024)) >/dev/null
cat > "$WORK"/esp-grub.cfg <<EOF
# Debian's signed GRUB reads \\EFI\\debian\\grub.cfg (its prefix); hand over to the root filesystem.
search --no-floppy --fs-uuid --set=root $ROOT_UUID
set prefix=(\$root)/boot/grub
configfile (\$root)/boot/grub/grub.cfg
EOF
export MTOOLS_SKIP_CHECK=1
mmd -i "$ESP" ::/EFI ::/EFI/BOOT ::/EFI/debian
mcopy -i "$ESP" "$ROOT"/usr/lib/shim/shimx64.efi.signed ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$ESP" "$ROOT"/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed ::/EFI/BOOT/grubx64.efi
mcopy -i "$ESP" "$ROOT"/usr/lib/shim/mmx64.efi.signed ::/EFI/BOOT/mmx64.efi
mcopy -i "$ESP" "$WORK"/esp-grub.cfg ::/EFI/debian/grub.cfg
mcopy -i "$ESP" "$WORK"/esp-grub.cfg ::/EFI/BOOT/grub.cfg
# No fbx64.efi: shim's fallback would write boot entries into the VM's NVRAM.
dd if="$ESP" of="$RAW.tmp" bs=1M seek=2 conv=notrunc status=none

# --- root: ext4 written in place at p3's offset ---
rm -rf "$WORK"          # not part of the image
trap 'rm -f "$RAW.tmp"' EXIT
# GRUB 2.06 cannot read ext4 with metadata_csum_seed; orphan_file needs e2fsprogs >= 1.47 to fsck.
mke2fs -q -t ext4 -F -L rescue-root -U "$ROOT_UUID" -O ^metadata_csum_seed,^orphan_file \
	-E offset=$(( (2 + ESP_MIB) * MiB )),root_owner=0:0 -d "$ROOT" "$RAW.tmp" "$((ROOT_MIB))M"
mv "$RAW.tmp" "$RAW"
trap - EXIT
echo "disk: $RAW assembled in $(( $(date +%s) - start )) s (root ${ROOT_MIB} MiB, ${USED_MIB} MiB used)"

# --- fixed VHD for Azure: a fixed-size VHD whose virtual size is a whole number of MiB ---
start=$(date +%s)
qemu-img convert -f raw -O vpc -o subformat=fixed,force_size "$RAW" "$VHD"
python3 - "$VHD" <<'PY'
import json, subprocess, sys
info = json.loads(subprocess.check_output(["qemu-img", "info", "-f", "vpc", "--output=json", sys.argv[1]]))
size = info["virtual-size"]
assert info["format"] == "vpc" and size % (1024 * 1024) == 0, info
with open(sys.argv[1], "rb") as f:   # a fixed VHD is the raw disk followed by a 512-byte footer
    f.seek(-512, 2); footer = f.read(512)
assert footer[:8] == b"conectix" and int.from_bytes(footer[60:64], "big") == 2, "not a fixed VHD"
print(f"vhd: fixed VHD, virtual size {size} bytes = {size // (1024 * 1024)} MiB")
PY
echo "vhd: $VHD converted in $(( $(date +%s) - start )) s"
