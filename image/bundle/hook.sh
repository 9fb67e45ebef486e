#!/bin/sh
# Guichet Proche — the update bundle's hook (docs/updates.md, « The update bundle »). RAUC runs
# it from the bundle, so it is always the new release's own. The bundle's boot image is the
# same for both slots; after RAUC has written it to a slot's FAT (boot-a or boot-b), this
# rewrites that FAT's cmdline.txt so its root= names the slot's own root partition by PARTUUID:
#   slot-post-install, RAUC_SLOT_CLASS=boot, RAUC_SLOT_PARENT=rootfs.0|rootfs.1,
#   RAUC_SLOT_MOUNT_POINT=<the FAT, mounted by RAUC>
# Anything else: nothing to do. The file is written to a temporary name, synced, renamed.
# GUICHET_PARTLABEL_DIR moves /dev/disk/by-partlabel for tests.
set -eu

fail() {
	echo "guichet bundle hook: $*" >&2
	exit 1
}

[ "${1:-}" = slot-post-install ] || exit 0
[ "${RAUC_SLOT_CLASS:-}" = boot ] || exit 0

case "${RAUC_SLOT_PARENT:-}" in
rootfs.0) label=root-a ;;
rootfs.1) label=root-b ;;
*) fail "unknown parent slot '${RAUC_SLOT_PARENT:-}'" ;;
esac

device="${GUICHET_PARTLABEL_DIR:-/dev/disk/by-partlabel}/$label"
partuuid=$(blkid -s PARTUUID -o value "$device") || fail "no PARTUUID for $device"
case "$partuuid" in
*[!0-9a-fA-F-]* | "") fail "unreadable PARTUUID '$partuuid' for $device" ;;
esac

mnt="${RAUC_SLOT_MOUNT_POINT:?RAUC did not mount the slot}"
cmdline="$mnt/cmdline.txt"
[ -f "$cmdline" ] || fail "$cmdline is missing"
grep -q 'root=' "$cmdline" || fail "$cmdline names no root"
sed "s|root=[^ ]*|root=PARTUUID=$partuuid|" "$cmdline" >"$cmdline.tmp"
sync "$cmdline.tmp" 2>/dev/null || sync
mv "$cmdline.tmp" "$cmdline"
sync
echo "guichet bundle hook: $RAUC_SLOT_NAME boots root=PARTUUID=$partuuid"
