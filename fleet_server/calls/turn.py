"""Time-limited TURN credentials for one party of one call (coturn's "TURN REST API").

coturn started with ``use-auth-secret`` and ``static-auth-secret=S`` accepts the username
``<expiry, unix time>:<name>`` with the password ``base64(HMAC-SHA1(S, username))`` until
that time: the fleet server and coturn share only the secret, nothing is stored, and a
counter never holds a TURN password longer than a call (docs/turn.md).

``name`` says which call and which party (``<call id>.counter``, ``<call id>.agent``): the
call id is random and names no one, and coturn's log then links an allocation to the call
log. Each party has its own username so that coturn's ``user-quota`` counts one browser or
one counter, not the pair.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from guichet.signalling import IceServer

# The TURN URLs (RFC 7065) both aiortc and browsers use; aiortc drops any other silently.
TURN_URL_RE = re.compile(
    r"turn:[^?:\s]+(:[0-9]{1,5})?(\?transport=(udp|tcp))?"
    r"|turns:[^?:\s]+(:[0-9]{1,5})?(\?transport=tcp)?"
)


class Party(StrEnum):
    COUNTER = "counter"
    AGENT = "agent"


def turn_password(secret: str, username: str) -> str:
    """coturn's expected password for ``username`` under the shared ``secret``."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class TurnIssuer:
    """Hands out the TURN server entry, with fresh credentials, for one party of a call."""

    urls: tuple[str, ...]
    secret: str = field(repr=False)
    ttl_s: int

    def server(self, call_id: uuid.UUID, party: Party, now_s: float) -> IceServer:
        username = f"{int(now_s) + self.ttl_s}:{call_id}.{party}"
        return IceServer(
            urls=list(self.urls),
            username=username,
            credential=turn_password(self.secret, username),
        )
