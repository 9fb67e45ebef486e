#!/bin/sh
# Guichet Proche — the trial's last resort (docs/updates.md, « The health gate »). After an
# update the firmware boots the new slot once (tryboot); the counter's agent commits it when
# its health gate passes, or gives it up and reboots. When the agent cannot even run (the new
# release's counter service fails to start), nobody would reboot: this does, after
# GRACE seconds (health_gate_s's default and a margin), so the firmware boots the committed
# slot again. It never acts while the agent runs (the agent's gate decides, and never
# reboots during a call), and does nothing outside a trial boot.
#
# GRACE: 900 s, or guichet.garde_essai_s=<s> on the kernel command line (checks shorten it);
# GUICHET_TRIAL_GUARD_S and GUICHET_TRIAL_GUARD_POLL_S override both (tests).
# GUICHET_FIRMWARE_DT moves the firmware's device-tree node, as for rauc-tryboot.sh.
set -eu

BACKEND="${GUICHET_TRYBOOT_BACKEND:-/usr/local/lib/guichet/rauc-tryboot.sh}"
DT="${GUICHET_FIRMWARE_DT:-/proc/device-tree/chosen/bootloader}"
POLL_S="${GUICHET_TRIAL_GUARD_POLL_S:-10}"

say() { echo "guichet-trial-guard: $*"; }

grace_s() {
	read -r cmdline </proc/cmdline
	for word in $cmdline; do
		case "$word" in
		guichet.garde_essai_s=*[!0-9]* | guichet.garde_essai_s=) ;;
		guichet.garde_essai_s=*)
			echo "${word#*=}"
			return
			;;
		esac
	done
	echo 900
}

tryboot=0
if [ -r "$DT/tryboot" ]; then
	tryboot=$(od -An -tu1 -N4 "$DT/tryboot" | awk '{ print $4 }')
fi
[ "$tryboot" = 1 ] || exit 0 # a plain boot: the committed slot, nothing to guard

slot=$("$BACKEND" get-current)
grace="${GUICHET_TRIAL_GUARD_S:-$(grace_s)}"
say "trial boot of slot $slot: committed within ${grace} s, or back to the committed slot"
waited=0
while [ "$waited" -lt "$grace" ]; do
	if [ "$("$BACKEND" get-state "$slot")" = good ]; then
		say "slot $slot committed"
		exit 0
	fi
	sleep "$POLL_S"
	waited=$((waited + POLL_S))
done
if [ "$("$BACKEND" get-state "$slot")" = good ]; then
	exit 0
fi
if systemctl is-active --quiet guichet.service; then
	say "slot $slot not committed yet, the counter's agent runs: its health gate decides"
	exit 0
fi
say "slot $slot not committed after ${grace} s and the counter's agent does not run: giving the trial up"
rauc status mark-bad booted || say "rauc could not mark the slot bad; the reboot goes back all the same"
systemctl reboot
