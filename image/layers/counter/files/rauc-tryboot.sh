#!/bin/sh
# Guichet Proche — RAUC's custom bootloader backend for the Raspberry Pi firmware's tryboot
# (docs/updates.md, « Boot switching with tryboot »). RAUC calls it as
#   get-primary | set-primary <bootname> | get-state <bootname> | set-state <bootname> good|bad
#   | get-current
# (RAUC's docs/integration.rst, « Custom bootloader backend interface »). Bootnames are A and B,
# the root slots; each boots from its own FAT (boot_partition 2 and 3).
#
# What it works on, all on the first FAT (RASPIFIRM, /boot/firmware, which the firmware reads
# before choosing a slot):
#   autoboot.txt        [all] tryboot_a_b=1, boot_partition=<committed slot's FAT>,
#                       [tryboot] boot_partition=<the other one>: the firmware boots the committed
#                       slot, and the other one once after `reboot "0 tryboot"`.
#   guichet-slots.txt   each slot's boot state for RAUC (A=good, B=bad); absent: the committed
#                       slot is good, the other bad.
#   guichet-tryboot.txt the slot RAUC made primary (set-primary) and not yet committed: the
#                       counter's update agent then reboots with `reboot "0 tryboot"`.
# and on what the firmware tells the kernel, /proc/device-tree/chosen/bootloader/partition and
# tryboot (32-bit big-endian numbers).
#
# Commit = set-state <booted slot> good while booted from it in tryboot: autoboot.txt is
# rewritten with the slots swapped. Anything else leaves autoboot.txt alone, so a new system
# that fails before that goes back to the committed slot on the next reboot, by itself.
# Files are written to a temporary name, synced, then renamed over the old one. The FAT is
# mounted read-only at run time: a call that writes remounts it read-write and, on its way
# out, read-only again.
#
# The paths can be moved for tests and for qemu (no Pi firmware there): GUICHET_AUTOBOOT_DIR,
# GUICHET_FIRMWARE_DT.
set -eu

DIR="${GUICHET_AUTOBOOT_DIR:-/boot/firmware}"
DT="${GUICHET_FIRMWARE_DT:-/proc/device-tree/chosen/bootloader}"
AUTOBOOT="$DIR/autoboot.txt"
STATES="$DIR/guichet-slots.txt"
PENDING="$DIR/guichet-tryboot.txt"

fail() {
	echo "rauc-tryboot: $*" >&2
	exit 1
}

part_of() { # bootname -> boot_partition
	case "$1" in
	A) echo 2 ;;
	B) echo 3 ;;
	*) fail "unknown slot '$1' (A or B)" ;;
	esac
}

slot_of() { # boot_partition -> bootname
	case "$1" in
	2) echo A ;;
	3) echo B ;;
	*) fail "partition $1 is no root slot's" ;;
	esac
}

other_of() {
	case "$1" in
	A) echo B ;;
	*) echo A ;;
	esac
}

dt_number() { # a device-tree cell (4 bytes, big-endian) -> decimal; fails if absent
	[ -r "$DT/$1" ] || return 1
	od -An -tu1 -N4 "$DT/$1" | awk '{ print ($1 * 16777216) + ($2 * 65536) + ($3 * 256) + $4 }'
}

committed() { # the slot of [all] boot_partition in autoboot.txt
	[ -r "$AUTOBOOT" ] || fail "$AUTOBOOT is missing"
	part=$(awk -F= '
		/^\[/ { section = $0; next }
		section == "[all]" && $1 == "boot_partition" { print $2 }
	' "$AUTOBOOT" | tr -d ' \r')
	[ -n "$part" ] || fail "$AUTOBOOT names no boot_partition in [all]"
	slot_of "$part"
}

current() {
	part=$(dt_number partition) || fail "the firmware did not say which partition it booted"
	slot_of "$part"
}

in_tryboot() {
	[ "$(dt_number tryboot 2>/dev/null || echo 0)" = 1 ]
}

remounted=""
writable() { # the FAT is mounted read-only at run time: read-write for this call only
	[ -z "$remounted" ] || return 0
	if findmnt -rno OPTIONS --target "$DIR" 2>/dev/null | grep -qE '(^|,)ro(,|$)'; then
		mount -o remount,rw "$DIR" || fail "$DIR cannot be made writable"
		remounted=1
		trap 'sync; mount -o remount,ro "$DIR" || echo "rauc-tryboot: $DIR stays read-write" >&2' EXIT
	fi
}

remove() {
	if [ -e "$1" ]; then
		writable
		rm -f "$1"
	fi
}

write_file() { # path content: temporary file, sync, rename
	writable
	printf '%s' "$2" >"$1.tmp"
	sync "$1.tmp"
	mv -f "$1.tmp" "$1"
}

state_of() {
	if [ -r "$STATES" ]; then
		value=$(awk -F= -v slot="$1" '$1 == slot { print $2 }' "$STATES" | tr -d ' \r')
		if [ -n "$value" ]; then
			echo "$value"
			return
		fi
	fi
	if [ "$(committed)" = "$1" ]; then echo good; else echo bad; fi
}

set_state_file() { # slot state
	a=$(state_of A)
	b=$(state_of B)
	case "$1" in
	A) a=$2 ;;
	B) b=$2 ;;
	esac
	write_file "$STATES" "A=$a
B=$b
"
}

pending() {
	if [ -r "$PENDING" ]; then tr -d ' \r\n' <"$PENDING"; fi
}

commit() { # slot: the firmware boots it by default from now on
	write_file "$AUTOBOOT" "[all]
tryboot_a_b=1
boot_partition=$(part_of "$1")
[tryboot]
boot_partition=$(part_of "$(other_of "$1")")
"
}

get_primary() {
	# The slot the next boot is meant for: a pending trial (until it is under way), else
	# the committed one.
	trial=$(pending)
	if [ -n "$trial" ] && ! { in_tryboot && [ "$(current 2>/dev/null || true)" = "$trial" ]; }; then
		echo "$trial"
	else
		committed
	fi
}

set_primary() {
	part_of "$1" >/dev/null
	if [ "$(committed)" = "$1" ]; then
		remove "$PENDING" # back to the committed slot: nothing to try
	else
		commit "$(other_of "$1")" # [tryboot] names the slot to try
		write_file "$PENDING" "$1
"
	fi
}

set_state() {
	part_of "$1" >/dev/null
	case "$2" in
	good)
		if [ "$(committed)" != "$1" ]; then
			if ! in_tryboot || [ "$(current)" != "$1" ]; then
				fail "slot $1 can only be committed while booted from it in tryboot"
			fi
			commit "$1"
		fi
		remove "$PENDING"
		set_state_file "$1" good
		;;
	bad)
		if [ "$(pending)" = "$1" ]; then remove "$PENDING"; fi
		set_state_file "$1" bad
		;;
	*) fail "state '$2' is neither good nor bad" ;;
	esac
}

case "${1:-}" in
get-primary) get_primary ;;
set-primary) set_primary "${2:?bootname}" ;;
get-state) part_of "${2:?bootname}" >/dev/null && state_of "$2" ;;
set-state) set_state "${2:?bootname}" "${3:?good or bad}" ;;
get-current) current ;;
*) fail "usage: $0 get-primary | set-primary S | get-state S | set-state S good|bad | get-current" ;;
esac
