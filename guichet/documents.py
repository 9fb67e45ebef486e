"""The documents contract: the call's WebRTC data channel between the agent's browser and
the counter. Both sides follow this module (``agent_documents.js`` mirrors it); golden
fixtures in ``tests/fixtures/documents/`` pin each message.

The browser creates one reliable, ordered data channel labelled ``documents`` in its offer;
the counter (aiortc) accepts it. Text frames are JSON messages with a ``type``; binary frames
are the chunks (``CHUNK_BYTES`` each, the last one shorter) of the one file in transit in
that direction, between its announcement and its ``done``:

    browser → counter   scan_prepare                         (the screen shows what to do)
    browser → counter   scan_request                         (the counter scans…)
    counter → browser   progress(scanning) · scan_page × n   (…page by page, thumbnails…)
    counter → browser   scan_result · chunks · done          (…then sends one PDF)

    browser → counter   print_start · chunks · done          (a PDF to print)
    counter → browser   progress(receiving) · job_state × n  (queued → printing → done|failed)

    counter → browser   device_state                         (on open and on every change)
    counter → browser   error                                (anything refused, in French)

Both senders keep the channel's buffered amount under ``HIGH_WATER_BYTES`` (the browser
with ``bufferedAmountLowThreshold``, the counter with aiortc's ``bufferedAmount``), so the
call's audio and video keep flowing while a document crosses a slow link. ``done`` carries
the SHA-256 of the whole file; the receiver checks it (and the announced size) before use.
Document bytes never cross the fleet server: the channel is peer to peer, over DTLS.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from guichet.errors import DocumentError as DocumentError  # re-exported
from guichet.messages import parse_json

CHANNEL_LABEL = "documents"
CHUNK_BYTES = 16 * 1024  # the size every WebRTC stack sends unfragmented
HIGH_WATER_BYTES = 1024 * 1024  # stop sending above this much queued in the channel…
LOW_WATER_BYTES = 256 * 1024  # …and resume below this (bufferedAmountLowThreshold)
MAX_MESSAGE_BYTES = 64 * 1024  # a JSON message; a thumbnail is ~5 KB
MAX_THUMBNAIL_CHARS = 48 * 1024  # base64 JPEG, a page shown ~160 px wide
PROGRESS_EVERY_BYTES = 256 * 1024  # one progress message per this many bytes moved

T = TypeVar("T")

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
TransferId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


# --- browser → counter ----------------------------------------------------------------------


class ScanRequest(_Msg):
    type: Literal["scan_request"] = "scan_request"
    id: TransferId
    resolution: Literal[150, 300] = 300  # dpi
    mode: Literal["color", "gray", "lineart"] = "gray"
    source: Literal["flatbed", "adf"] = "flatbed"


class ScanPrepare(_Msg):
    """Show the citizen how to place the document (before the agent presses "Numériser")."""

    type: Literal["scan_prepare"] = "scan_prepare"
    source: Literal["flatbed", "adf"] = "flatbed"


class PrintStart(_Msg):
    """A PDF follows in chunks; refused at once if ``size`` is beyond the counter's limit."""

    type: Literal["print_start"] = "print_start"
    id: TransferId
    name: str = Field(max_length=255)  # shown to the agent only; never logged, never a path
    size: int = Field(ge=0)
    sha256: Sha256
    pages: int | None = Field(default=None, ge=0)  # what the browser believes, if it knows


# --- either way -----------------------------------------------------------------------------


class Done(_Msg):
    """The file announced under ``id`` is complete; its SHA-256 for the receiver to check."""

    type: Literal["done"] = "done"
    id: TransferId
    sha256: Sha256


class Progress(_Msg):
    type: Literal["progress"] = "progress"
    id: TransferId
    stage: Literal["scanning", "assembling", "sending", "receiving", "checking"]
    done: int = Field(ge=0)  # bytes (sending/receiving) or pages (scanning)
    total: int | None = Field(default=None, ge=0)  # None while unknown (an ADF's page count)


# --- counter → browser ----------------------------------------------------------------------


class ScanPage(_Msg):
    """One page scanned: its pixel size, its weight in the PDF, and a small thumbnail."""

    type: Literal["scan_page"] = "scan_page"
    id: TransferId
    page: int = Field(ge=1)
    width_px: int = Field(ge=1)
    height_px: int = Field(ge=1)
    bytes: int = Field(ge=0)
    thumbnail: str = Field(default="", max_length=MAX_THUMBNAIL_CHARS)  # base64 JPEG


class ScanResult(_Msg):
    """The scanned PDF follows in chunks, then ``done``."""

    type: Literal["scan_result"] = "scan_result"
    id: TransferId
    name: str = Field(max_length=255)  # a suggested download name: "numerisation-….pdf"
    size: int = Field(ge=0)
    sha256: Sha256
    pages: int = Field(ge=1)


JobStateName = Literal["queued", "printing", "done", "failed"]


class JobState(_Msg):
    type: Literal["job_state"] = "job_state"
    id: TransferId
    state: JobStateName
    reason: str | None = Field(default=None, max_length=300)  # French, for the agent
    pages: int | None = Field(default=None, ge=0)


class DeviceAvailability(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    available: bool
    reason: str | None = Field(default=None, max_length=300)  # French, when not available
    adf: bool = False  # the scanner has a document feeder


class DeviceState(_Msg):
    type: Literal["device_state"] = "device_state"
    scanner: DeviceAvailability
    printer: DeviceAvailability


ErrorCode = Literal[
    "bad_message",
    "busy",
    "not_pdf",
    "too_large",
    "too_many_pages",
    "encrypted",
    "damaged",
    "checksum",
    "scanner_unavailable",
    "scanner_jammed",
    "scanner_cover_open",
    "scanner_no_document",
    "scanner_failed",
    "printer_unavailable",
    "print_failed",
]


class Error(_Msg):
    type: Literal["error"] = "error"
    id: TransferId | None = None  # the transfer it is about, if any
    code: ErrorCode
    message: str = Field(max_length=300)  # French, shown to the agent as is


BrowserToCounter = Annotated[
    ScanPrepare | ScanRequest | PrintStart | Done, Field(discriminator="type")
]
CounterToBrowser = Annotated[
    Progress | ScanPage | ScanResult | Done | JobState | DeviceState | Error,
    Field(discriminator="type"),
]

_FROM_BROWSER: TypeAdapter[BrowserToCounter] = TypeAdapter(BrowserToCounter)
_TO_BROWSER: TypeAdapter[CounterToBrowser] = TypeAdapter(CounterToBrowser)


def _bad_message(reason: str) -> DocumentError:
    return DocumentError("bad_message", reason)


def _parse(adapter: TypeAdapter[T], raw: str | bytes) -> T:
    return parse_json(adapter, raw, max_bytes=MAX_MESSAGE_BYTES, error=_bad_message)


def parse_from_browser(raw: str | bytes) -> BrowserToCounter:
    return _parse(_FROM_BROWSER, raw)


def parse_to_browser(raw: str | bytes) -> CounterToBrowser:
    return _parse(_TO_BROWSER, raw)


def dump(message: _Msg) -> str:
    return message.model_dump_json()


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def chunks(data: bytes, size: int = CHUNK_BYTES) -> list[memoryview]:
    """``data`` cut in ``size``-byte pieces (views, no copies)."""
    view = memoryview(data)
    return [view[i : i + size] for i in range(0, len(data), size)]
