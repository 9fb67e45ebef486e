"""Remote support's files (issue 14, items 2 and 3), the server's side: a counter answers a
``screenshot`` or ``fetch_logs`` action by uploading its file over HTTPS with its own call
token (``api/uploads.py``), then acks over MQTT. Kept ``support_retention_h`` and purged.

An upload is accepted only from the counter the action was sent to, only for an action
that asks for one and is still pending (not answered, not past its deadline), only once,
only of the expected type (a PNG; gzip'd JSON lines) and at most ``UPLOAD_MAX_BYTES``.
Everything else is refused with a French reason and the HTTP status to answer with.
"""

from __future__ import annotations

import gzip
import io
import json
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.errors import FleetError
from fleet_server.models import CommandRecord, SupportUpload
from fleet_server.mqtt.actions import state_of
from fleet_server.security import audit
from guichet.actions import LOGS_TYPE, SCREENSHOT_TYPE, UPLOAD_MAX_BYTES, Action

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
LOGS_MAX_INFLATED = 64 * 1024 * 1024  # a gzip bomb stops here (a day of logs is far less)
LOGS_MAX_LINES = 200_000  # what a page and a filter go through at most
LINE_MAX_CHARS = 16 * 1024  # a longer line is cut when shown
EXPECTED_TYPE: Final = {Action.SCREENSHOT: SCREENSHOT_TYPE, Action.FETCH_LOGS: LOGS_TYPE}
LEVELS: Final = ("debug", "info", "warning", "error", "critical")


class UploadRefusedError(FleetError):
    """The file was not kept; ``str(exc)`` says why in French, ``status`` the HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def counter_actor(device_id: str) -> str:
    """How the audit log names a counter acting with its own credentials."""
    return f"guichet {device_id}"


def accept(
    session: Session,
    device_id: str,
    request_id: uuid.UUID,
    media_type: str,
    body: bytes,
    *,
    now: datetime,
    retention: timedelta,
) -> SupportUpload:
    """Check and keep one counter's upload (``device_id``: whose token it came with), with
    its audit entry; raises ``UploadRefusedError``. The caller commits."""
    record = session.get(CommandRecord, request_id)
    if record is None or record.device_id != device_id:
        raise UploadRefusedError("aucune action de ce type n'attend ce fichier", 404)
    try:
        action = Action(record.name)
    except ValueError:
        action = None
    if action not in EXPECTED_TYPE:
        raise UploadRefusedError("aucune action de ce type n'attend ce fichier", 404)
    if session.get(SupportUpload, request_id) is not None:
        raise UploadRefusedError("fichier déjà reçu pour cette action", 409)
    if state_of(record, now) != "pending":
        raise UploadRefusedError("cette action est déjà terminée", 409)
    if media_type.split(";")[0].strip().lower() != EXPECTED_TYPE[action]:
        raise UploadRefusedError(f"type attendu : {EXPECTED_TYPE[action]}", 415)
    if len(body) > UPLOAD_MAX_BYTES:
        raise UploadRefusedError("fichier trop volumineux", 413)
    _check_body(action, body)
    upload = SupportUpload(
        request_id=request_id,
        device_id=device_id,
        media_type=EXPECTED_TYPE[action],
        size=len(body),
        body=body,
        received_at=now,
        expires_at=now + retention,
    )
    session.add(upload)
    audit.record(
        session, counter_actor(device_id), "support.upload", device_id,
        command=action.value, request_id=str(request_id), bytes=len(body),
    )  # fmt: skip
    try:
        session.flush()
    except IntegrityError:  # a second upload racing the first
        raise UploadRefusedError("fichier déjà reçu pour cette action", 409) from None
    return upload


def _check_body(action: Action, body: bytes) -> None:
    if action is Action.SCREENSHOT:
        if not body.startswith(PNG_SIGNATURE):
            raise UploadRefusedError("ce n'est pas une image PNG", 422)
        return
    try:
        inflate(body)
    except ValueError as exc:
        raise UploadRefusedError(str(exc), 422) from None


def inflate(body: bytes) -> bytes:
    """The gzip'd logs, inflated; ``ValueError`` (French) if not gzip or past the limit."""
    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as stream:
            while chunk := stream.read(1024 * 1024):
                out += chunk
                if len(out) > LOGS_MAX_INFLATED:
                    raise ValueError("journaux trop volumineux une fois décompressés")
    except (OSError, EOFError, zlib.error):
        raise ValueError("ce n'est pas un fichier gzip lisible") from None
    return bytes(out)


@dataclass(frozen=True)
class LogLine:
    """One line of a counter's logs as the page shows it."""

    ts: str
    level: str
    logger: str
    msg: str
    extra: dict[str, Any]


def log_lines(body: bytes) -> list[LogLine]:
    """The upload's JSON lines (a line that is not a JSON object is shown as its text)."""
    lines: list[LogLine] = []
    for raw in inflate(body).decode("utf-8", "replace").splitlines()[:LOGS_MAX_LINES]:
        text = raw.strip()[:LINE_MAX_CHARS]
        if not text:
            continue
        try:
            entry = json.loads(text)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            lines.append(LogLine("", "", "", text, {}))
            continue
        known = {k: str(entry.pop(k, "")) for k in ("ts", "level", "logger", "msg")}
        lines.append(
            LogLine(known["ts"], known["level"].lower(), known["logger"], known["msg"], entry)
        )
    return lines


def filter_lines(
    lines: list[LogLine], *, level: str = "", logger: str = "", text: str = ""
) -> list[LogLine]:
    """Lines at ``level`` or above, whose logger starts with ``logger``, containing ``text``
    (case-insensitive, in the message or its extras)."""
    floor = LEVELS.index(level) if level in LEVELS else 0
    needle = text.casefold()

    def keep(line: LogLine) -> bool:
        if floor and (line.level not in LEVELS or LEVELS.index(line.level) < floor):
            return False
        if logger and not line.logger.startswith(logger):
            return False
        if needle:
            haystack = f"{line.msg} {json.dumps(line.extra, ensure_ascii=False)}".casefold()
            return needle in haystack
        return True

    return [line for line in lines if keep(line)]


def upload_for(session: Session, device_id: str, request_id: uuid.UUID) -> SupportUpload | None:
    """The file of this counter's action, while it is kept."""
    upload = session.get(SupportUpload, request_id)
    return upload if upload is not None and upload.device_id == device_id else None


def kept_ids(session: Session, request_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these actions have their file kept (the page links only to those)."""
    if not request_ids:
        return set()
    query = select(SupportUpload.request_id).where(SupportUpload.request_id.in_(request_ids))
    return set(session.scalars(query))


def purge_expired(sessions: sessionmaker[Session], now: datetime) -> int:
    """Delete the files past their retention; returns how many."""
    with sessions.begin() as session:
        result = session.execute(delete(SupportUpload).where(SupportUpload.expires_at <= now))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
