#!/bin/sh
# Guichet Proche — runs inside the VM of ./run image-check; prints one verdict line that
# the host greps from the serial log, then waits so the host sees "online" before power-off.
set -u
fail() { echo "GUICHET-CHECK: ECHEC $*" > /dev/console; sleep "${HOLD_S}"; exit 1; }
HOLD_S=60

opts=$(findmnt -no OPTIONS /)
case ",$opts," in *,ro,*) ;; *) fail "racine montée en écriture ($opts)" ;; esac
if touch /.guichet-probe 2>/dev/null; then rm -f /.guichet-probe; fail "racine modifiable"; fi
findmnt -no OPTIONS /var/lib/guichet | grep -q '^rw' || fail "partition de données absente"
findmnt /var/log/journal >/dev/null || fail "journal non persistant"

i=0
while [ "$(systemctl is-active guichet.service)" != active ]; do
  i=$((i + 1))
  [ "$i" -gt 600 ] && fail "le service guichet n'a pas démarré"
  systemctl is-failed -q guichet-firstboot.service && fail "configuration refusée (guichet.toml)"
  sleep 1
done
size=$(lsblk -bno SIZE "$(findmnt -no SOURCE /var/lib/guichet)")
echo "GUICHET-CHECK: OK racine=ro donnees=${size}o service=actif" > /dev/console
sleep "${HOLD_S}"
