#!/usr/bin/env bash
# ./run fresh-check — the README's two commands on a machine that has never seen the project.
#
# A minimal Debian 12 root is made with mmdebstrap (native amd64, no emulation) and entered as
# a chroot with its own mount, PID, UTS and IPC namespaces (the host's network, so the
# machine kind's PostgreSQL and Mosquitto on 127.0.0.1 answer, as they do on a new machine of
# this kind). It gets only what reaches the package registries from the host (apt sources and
# options, pip's configuration, the CA certificates the network needs) and a fresh clone of
# the committed HEAD — none of this machine's installed packages or edited files. Inside:
#   1. ./run test   must pass, and /etc/cups/cupsd.conf must still be Debian's own file;
#   2. ./run demo   must serve its dashboard: the printed login works and the four demo
#                   counters are "En ligne" (tools/demo_probe.py).
# The host's /etc/cups is checked unchanged too. Slow (~30 min): not part of CI.
#   tools/fresh-check.sh [--keep]   (root; --keep leaves var/fresh for a look)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK="$ROOT/var/fresh"
FRESH="$WORK/root"
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1
SUITE=bookworm
MIRRORS=(
  "deb http://deb.debian.org/debian $SUITE main"
  "deb http://deb.debian.org/debian $SUITE-updates main"
  "deb http://deb.debian.org/debian-security $SUITE-security main"
)

log() { printf '\033[1m==> fresh-check: %s\033[0m\n' "$*" >&2; }
now() { date +%s; }
[ "$(id -u)" -eq 0 ] || { echo "fresh-check needs root (mmdebstrap, chroot, namespaces)" >&2; exit 1; }
command -v mmdebstrap >/dev/null || {
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends mmdebstrap >/dev/null
}

host_cups_before=$(sha256sum /etc/cups/cupsd.conf 2>/dev/null || echo "absent")
started=$(now)
rm -rf "$WORK"
mkdir -p "$WORK"

# --- a minimal root ---------------------------------------------------------------------------
log "mmdebstrap $SUITE (minbase + python3, python3-venv, git, ca-certificates)"
apt_options=()
for conf in /etc/apt/apt.conf.d/99artifact-registry /etc/apt/apt.conf.d/*proxy*; do
  [ -f "$conf" ] && apt_options+=("--aptopt=$conf")
done
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,git,ca-certificates \
  "${apt_options[@]}" "$SUITE" "$FRESH" "${MIRRORS[@]}"
bootstrapped=$(now)

# Only what reaches the registries comes from the host.
install -d "$FRESH/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$FRESH/usr/local/share/ca-certificates/" 2>/dev/null || true
chroot "$FRESH" update-ca-certificates >/dev/null 2>&1
[ -f /etc/pip.conf ] && grep -E '^\[|^(cert|index-url|proxy|timeout)' /etc/pip.conf > "$FRESH/etc/pip.conf"
# Like this machine kind: package scripts do not start services (the suite starts its own).
if [ -f /usr/sbin/policy-rc.d ]; then
  install -m 0755 /usr/sbin/policy-rc.d "$FRESH/usr/sbin/policy-rc.d"
fi
git clone --quiet --no-local "$ROOT" "$FRESH/root/guichet-proche"
git -C "$FRESH/root/guichet-proche" log --oneline -1 >&2

# --- inside: the README's two commands --------------------------------------------------------
cat > "$FRESH/root/fresh-inside.sh" <<'INSIDE'
#!/bin/bash
set -uo pipefail
cd /root/guichet-proche
t0=$(date +%s)
./run test > /root/run-test.log 2>&1
test_rc=$?
t1=$(date +%s)
tail -n 5 /root/run-test.log
if cmp -s /etc/cups/cupsd.conf /usr/share/cups/cupsd.conf.default; then
  cups="unchanged"
else
  cups="CHANGED"
fi
./run demo --port 8765 > /root/run-demo.log 2>&1 &
demo=$!
python3 tools/demo_probe.py /root/run-demo.log
demo_rc=$?
kill -INT "$demo" 2>/dev/null
wait "$demo" 2>/dev/null
t2=$(date +%s)
echo "FRESH-RESULT test_rc=$test_rc test_s=$((t1 - t0)) cupsd_conf=$cups demo_rc=$demo_rc demo_s=$((t2 - t1))"
INSIDE
chmod 0755 "$FRESH/root/fresh-inside.sh"

log "entering the fresh root: ./run test, then ./run demo"
inside_env=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  LANG=C.UTF-8 TERM=dumb)
for var in PIP_DEFAULT_TIMEOUT PIP_DISABLE_PIP_VERSION_CHECK PIP_CERT; do
  [ -n "${!var:-}" ] && inside_env+=("$var=${!var}")
done
set +e
# shellcheck disable=SC2016  # expanded by the inner shell
unshare --mount --pid --fork --uts --ipc --propagation private /bin/bash -c '
  set -e
  fresh=$1; shift
  # The root is a mount point, as on a machine (unshare --propagation needs one); /tmp
  # stays a directory of the root file system, as on a Debian 12 install.
  mount --bind "$fresh" "$fresh"
  mount -t proc proc "$fresh/proc"
  mount --rbind /sys "$fresh/sys"
  mount --rbind /dev "$fresh/dev"
  mount -t tmpfs -o mode=1777 tmpfs "$fresh/dev/shm"
  mount -t tmpfs -o mode=0755 tmpfs "$fresh/run"
  hostname guichet-fresh
  exec chroot "$fresh" /usr/bin/env -i "$@" /root/fresh-inside.sh
' fresh "$FRESH" "${inside_env[@]}" | tee "$WORK/inside.log"
set -e
finished=$(now)

result=$(grep -o 'FRESH-RESULT.*' "$WORK/inside.log" | tail -n1 || true)
host_cups_after=$(sha256sum /etc/cups/cupsd.conf 2>/dev/null || echo "absent")
host_cups="unchanged"
[ "$host_cups_before" = "$host_cups_after" ] || host_cups="CHANGED"
echo "fresh-check: bootstrap $((bootstrapped - started)) s, total $((finished - started)) s"
echo "fresh-check: ${result:-no result (see $WORK/inside.log)} host_cupsd_conf=$host_cups"
cp "$FRESH/root/run-test.log" "$FRESH/root/run-demo.log" "$WORK/" 2>/dev/null || true
if [[ "$result" == *"test_rc=0 "*"cupsd_conf=unchanged demo_rc=0 "* ]] && [ "$host_cups" = unchanged ]; then
  echo "fresh-check: passed"
  [ "$KEEP" -eq 1 ] || rm -rf "$FRESH"
  exit 0
fi
echo "fresh-check: FAILED — logs in $WORK (run-test.log, run-demo.log, inside.log)"
exit 1
