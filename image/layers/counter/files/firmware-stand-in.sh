#!/bin/sh
# Guichet Proche — ./run update-check only: what the Raspberry Pi firmware tells the kernel,
# for a counter booted in qemu, which has no Pi firmware (docs/updates.md, « The qemu check »).
# The check's harness (image/pi_firmware.py) reads autoboot.txt, picks the partition as the
# firmware would and boots with guichet.firmware=<partition>,<tryboot 0|1>; this puts the two
# cells the firmware writes into the device tree, chosen/bootloader/partition and tryboot
# (32-bit big-endian), where the kernel shows them (/proc/device-tree/chosen), so the
# tryboot backend and the trial guard read them as on a Pi. Inert elsewhere: started only by
# systemd.wants= on the kernel command line.
set -eu

value=""
read -r cmdline </proc/cmdline
for word in $cmdline; do
	case "$word" in
	guichet.firmware=*) value="${word#*=}" ;;
	esac
done
partition="${value%%,*}"
tryboot="${value#*,}"
case "$partition:$tryboot" in
[0-9]:[01] | [0-9][0-9]:[01]) ;;
*)
	echo "firmware-stand-in: guichet.firmware=$value: expected <partition>,<0|1>" >&2
	exit 1
	;;
esac

cell() { # a decimal < 256 -> 4 bytes big-endian
	printf '%b' "\\0000\\0000\\0000\\0$(printf '%03o' "$1")"
}

chosen=/sys/firmware/devicetree/base/chosen
stand_in=/run/guichet-firmware/chosen
mkdir -p "$stand_in/bootloader"
if [ -d "$chosen" ]; then
	cp -a "$chosen/." "$stand_in/" 2>/dev/null || true
fi
cell "$partition" >"$stand_in/bootloader/partition"
cell "$tryboot" >"$stand_in/bootloader/tryboot"
mkdir -p "$chosen" 2>/dev/null || true
mount --bind "$stand_in" "$chosen"
echo "firmware-stand-in: booted partition $partition, tryboot $tryboot"
