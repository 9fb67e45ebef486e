#!/bin/sh
# Guichet Proche — copy the self-test report to the SD card's boot partition (readable from
# the technician's computer) and remove autotest.txt so the next boot starts normally.
set -u
report=${1:-/run/guichet-autotest/rapport.txt}
boot=/boot/firmware
mount -o remount,rw "$boot" || exit 0
if [ -f "$report" ]; then
  sed 's/$/\r/' "$report" > "$boot/GUICHET-AUTOTEST.txt"
else
  printf 'Autotest interrompu : voir le journal (journalctl -u guichet-autotest).\r\n' \
    > "$boot/GUICHET-AUTOTEST.txt"
fi
rm -f "$boot/autotest.txt"
sync
mount -o remount,ro "$boot" || true
