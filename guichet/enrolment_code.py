"""The short code that names one enrolment request for humans, the same on both sides.

The counter shows it on its screen while it waits; the fleet server shows it beside the
pending request on ``/admin/enrolment``. The technician on the phone reads it out, the
administrator checks it before approving: they mean the same box. It is derived from the
SHA-256 of the request's poll secret — the server keeps only that hash, the counter knows
the secret — so nothing new is stored and the code reveals nothing of the secret.
"""

from __future__ import annotations

import hashlib
from typing import Final

# No 0/O/Q, 1/I/L, 2/Z, 5/S, 8/B, U/V: nothing a voice on the phone or a tired eye confuses.
ALPHABET: Final = "ACDEFGHJKMNPRTWXY34679"
LENGTH: Final = 6  # 22⁶ ≈ 1.1e8: two requests pending at once never share one in practice


def poll_digest(poll_secret: str) -> str:
    """The hex SHA-256 of a poll secret, as the fleet server stores it."""
    return hashlib.sha256(poll_secret.encode()).hexdigest()


def code_from_digest(poll_sha256: str) -> str:
    """``"3f2a…"`` (hex SHA-256) → six characters of ``ALPHABET``, e.g. ``"K7MP4X"``."""
    number = int(poll_sha256, 16)
    chars = []
    for _ in range(LENGTH):
        number, index = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[index])
    return "".join(chars)


def short_code(poll_secret: str) -> str:
    """The code of the request whose poll secret this is (the counter's side)."""
    return code_from_digest(poll_digest(poll_secret))
