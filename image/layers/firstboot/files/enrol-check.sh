#!/bin/sh
# Guichet Proche — runs inside the VM of ./run enrol-check: copies to the serial console what
# the counter's screen says during enrolment (the agent logs each enrolment screen as one
# JSON line) and whether GUICHET-ERREUR.txt reached the card. Never powers the VM off: the
# host ends it (that is also how it cuts the power).
set -u
journalctl -f -n all -o cat -u guichet.service | while IFS= read -r line; do
  case "$line" in
    *'"enrolment screen"'*) echo "GUICHET-ECRAN: $line" > /dev/console ;;
  esac
done &
while :; do
  if [ -f /boot/firmware/GUICHET-ERREUR.txt ]; then
    echo "GUICHET-CARTE: GUICHET-ERREUR.txt présent" > /dev/console
    sleep 3600
  fi
  sleep 2
done
