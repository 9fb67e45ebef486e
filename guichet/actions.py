"""Remote support's actions on a counter (issue 14): their command names, French labels and
how long the server waits for each one's ``cmd/ack`` before saying it went unanswered. The
volume and brightness actions carry their level in ``args["percent"]`` (0–100). The test
call (``test_call``) calls the server's automatic answerer over the call's own signalling
and media path; the server stores what it measured (``docs/line-test.md``).

An action is a ``contract.Command`` whose ``name`` is an ``Action``; the counter answers with a
``contract.CommandAck`` (the self-test's checks in ``checks``). Other commands (``ping``,
``set_telemetry_interval``, ``rotate_credentials``, the demo's ``press_button``) stay plain
names: they are not offered on a counter's page.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What an administrator may ask of a counter from its page, the fleet table or the API."""

    RESTART = "restart"  # the counter's software exits cleanly; systemd starts it again
    REBOOT = "reboot"  # the whole box restarts
    SELFTEST = "selftest"  # the checks that need nobody at the counter; results in the ack
    REFRESH_CONFIG = "refresh_config"  # the server publishes its config; the counter applies it
    SET_VOLUME = "set_volume"  # args: percent (0-100), the loudspeaker's volume
    SET_BRIGHTNESS = "set_brightness"  # args: percent (0-100), the screen's backlight
    TEST_CALL = "test_call"  # a short call to the server's answerer, which measures the line
    SCREENSHOT = "screenshot"  # the screen as drawn, uploaded over HTTPS; never in a call
    FETCH_LOGS = "fetch_logs"  # args: minutes; the counter's log lines, uploaded over HTTPS


ACTION_LABELS: dict[Action, str] = {  # French, as the page, the audit log and the API say them
    Action.RESTART: "Redémarrer le logiciel",
    Action.REBOOT: "Redémarrer le boîtier",
    Action.SELFTEST: "Lancer l'autotest",
    Action.REFRESH_CONFIG: "Rafraîchir la configuration",
    Action.SET_VOLUME: "Régler le volume du haut-parleur",
    Action.SET_BRIGHTNESS: "Régler la luminosité de l'écran",
    Action.TEST_CALL: "Appel de test",
    Action.SCREENSHOT: "Voir l'écran du guichet",
    Action.FETCH_LOGS: "Récupérer les journaux",
}

# How long the server waits for the ack; past that the action is shown as unanswered. A
# restart acks before it exits; the self-test probes the network and the broker (seconds).
ACTION_TIMEOUT_S: dict[Action, float] = {
    Action.RESTART: 30.0,
    Action.REBOOT: 30.0,
    Action.SELFTEST: 60.0,
    Action.REFRESH_CONFIG: 30.0,
    Action.SET_VOLUME: 30.0,
    Action.SET_BRIGHTNESS: 30.0,
    # The counter gives up after ``TEST_CALL_LIMIT_S``; the server's answerer measures for
    # its ``test_call_measure_s`` (10 s by default) once the media connect.
    Action.TEST_CALL: 90.0,
    Action.SCREENSHOT: 60.0,  # a PNG of a few hundred kB over a rural line
    Action.FETCH_LOGS: 120.0,  # up to UPLOAD_MAX_BYTES of gzip over a rural line
}
# Actions that cut whoever stands at the counter: refused while a call is under way. The
# test call takes the camera, the microphone and the line a citizen's call would use.
DISRUPTIVE: frozenset[Action] = frozenset(
    {Action.RESTART, Action.REBOOT, Action.SELFTEST, Action.TEST_CALL}
)
# Actions that carry a level: ``args = {"percent": 0..100}``.
LEVELS: frozenset[Action] = frozenset({Action.SET_VOLUME, Action.SET_BRIGHTNESS})
PERCENT_ARG = "percent"
TEST_CALL_LIMIT_S = 60.0  # the counter's whole test call, set-up to result, at most

# Screenshot and logs (issue 14, items 2 and 3): the counter answers the command by
# uploading its file over HTTPS, with its call token, to UPLOAD_PATH (the action's
# ``request_id`` names it), then acks. docs/decisions.md, "Remote support: screen and logs".
UPLOADS: frozenset[Action] = frozenset({Action.SCREENSHOT, Action.FETCH_LOGS})
MINUTES_ARG = "minutes"
DEFAULT_LOG_MINUTES = 30
MAX_LOG_MINUTES = 24 * 60  # a day of logs at most in one fetch
UPLOAD_PATH = "/api/v1/devices/{device_id}/uploads/{request_id}"
UPLOAD_MAX_BYTES = 4 * 1024 * 1024  # a 1080p PNG is ~0.5 MB; a day of gzip'd logs far less
SCREENSHOT_TYPE = "image/png"
LOGS_TYPE = "application/gzip"  # JSON lines, gzip'd
