"""The counter's logs from systemd's journal (``journalctl``), for remote support: the
``LogSource`` port when the counter runs as its systemd unit. ``-o cat`` gives each entry's
message alone, which is the JSON line the counter wrote (``guichet.logs``); lines from
before a restart are there too, which an in-memory ring cannot have.
"""

from __future__ import annotations

import os

from appliance.errors import HardwareError
from appliance.hw.tools import run_tool

UNIT = "guichet.service"  # image/layers/counter/files/guichet.service
JOURNAL_TIMEOUT_S = 20.0  # a day of one unit's entries reads in well under a second
MAX_OUTPUT_LINES = 200_000


def under_systemd() -> bool:
    """Whether this process was started by systemd (which sets ``INVOCATION_ID``)."""
    return bool(os.environ.get("INVOCATION_ID"))


class JournalctlLogs:
    """``journalctl -u <unit> --since -<N>min -o cat``; ``HardwareError`` (French) if the
    journal cannot be read."""

    def __init__(self, unit: str = UNIT, journalctl: str = "journalctl") -> None:
        self._argv = [journalctl, "--no-pager", "-q", "-u", unit, "-o", "cat"]

    async def recent(self, minutes: int) -> list[str]:
        argv = [*self._argv, "--since", f"-{int(minutes)}min"]
        try:
            run = await run_tool(argv, timeout_s=JOURNAL_TIMEOUT_S)
        except FileNotFoundError:
            raise HardwareError("journalctl absent : journal illisible") from None
        except TimeoutError:
            raise HardwareError("le journal n'a pas répondu à temps") from None
        if not run.ok:
            raise HardwareError(f"journal illisible : {run.reason() or run.returncode}")
        lines = run.stdout.decode("utf-8", "replace").splitlines()
        return [line for line in lines[-MAX_OUTPUT_LINES:] if line.strip()]
