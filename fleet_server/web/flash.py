"""What a form leaves for the page it redirects to: post/redirect/get with what was typed kept.

Every dashboard form posts, and its handler answers ``303 See Other`` to the page the form is
on, success or not, so the browser ends on a GET address (a reload posts nothing twice).
What that page must show is a *flash*: which form on the page it concerns, a French error or
notice, and — after a refusal — the values that were submitted, so the form comes back
filled in next to its message. The handler leaves it with ``deps.redirect_to``; ``deps.render``
takes it when the page it names is shown, once.

A flash is kept here, in this process's memory, under a random key that only the session
cookie carries: it is read by that session alone, at most once, and dropped after
``FLASH_TTL_S`` or when ``MAX_FLASHES`` newer ones push it out (a lost flash only means an
empty form). It is not kept in the cookie itself, which browsers cap at 4 KiB (a
questionnaire's form is larger) and which the user's browser stores: values do not leave
the server. Secrets never enter it: a field whose name says password, secret or token (and
the CSRF token) is dropped when the values are read, and the second-factor forms, whose
one-time code is a plain ``code`` field, keep no values at all (they pass none).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

FLASH_TTL_S = 300.0  # the redirect is followed at once; minutes spare a slow link
MAX_FLASHES = 2000  # one per session at a time; more sessions than that push the oldest out
MAX_FLASH_CHARS = 64_000  # what a refused form may keep; beyond, its values are dropped
SECRET_WORDS = ("password", "secret", "token")  # a field named with one is never kept

FormValues = Mapping[str, tuple[str, ...]]


def kept_values(items: Iterable[tuple[str, object]]) -> dict[str, tuple[str, ...]]:
    """A submitted form's text fields as they may be kept: no secret field, no file, and
    nothing at all when they add up to more than ``MAX_FLASH_CHARS``."""
    values: dict[str, list[str]] = {}
    size = 0
    for name, value in items:
        if not isinstance(value, str) or _secret(name):
            continue
        size += len(name) + len(value)
        values.setdefault(name, []).append(value)
    if size > MAX_FLASH_CHARS:
        logger.info("form values too large to keep", extra={"chars": size})
        return {}
    return {name: tuple(found) for name, found in values.items()}


def _secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


@dataclass(frozen=True, slots=True)
class Flash:
    """What one form's handler left for the page at ``path``.

    ``form`` names the form on that page (templates show the message next to it);
    ``changed`` names the row the change made or touched, so the page can mark it;
    ``about`` names the field the error concerns, so the page can mark it invalid and link
    it to the message (``_forms.html``'s ``described``).
    """

    path: str = ""
    form: str = ""
    error: str | None = None
    notice: str | None = None
    values: FormValues = field(default_factory=dict)
    changed: str = ""
    about: str = ""  # the field (or group of fields) the error is about, if one is

    def error_for(self, form: str) -> str | None:
        return self.error if form == self.form else None

    def notice_for(self, form: str) -> str | None:
        return self.notice if form == self.form else None

    def invalid(self, form: str, name: str) -> bool:
        """Whether the error left for ``form`` is about its field (or group) ``name``."""
        return self.error is not None and form == self.form and name == self.about

    def value(self, form: str, name: str, default: object = "") -> str:
        """What was typed in ``form``'s field ``name``, else ``default`` (as text)."""
        if form == self.form and self.values.get(name):
            return self.values[name][0]
        return "" if default is None else str(default)

    def chosen(self, form: str, name: str, default: Iterable[object] = ()) -> set[str]:
        """The options chosen in a multiple select (or checkboxes), else ``default``."""
        if form == self.form and self.values:
            return set(self.values.get(name, ()))
        return {str(v) for v in default}


NO_FLASH = Flash()


class FlashStore:
    """Flashes by random key, each taken once, gone after ``ttl_s`` (thread-safe: sync
    routes run in worker threads)."""

    def __init__(
        self,
        ttl_s: float = FLASH_TTL_S,
        capacity: int = MAX_FLASHES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._capacity = capacity
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, Flash]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, flash: Flash) -> str:
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._forget_old()
            self._items[key] = (self._clock() + self._ttl_s, flash)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return key

    def peek(self, key: str) -> Flash | None:
        with self._lock:
            self._forget_old()
            item = self._items.get(key)
        return item[1] if item is not None else None

    def discard(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _forget_old(self) -> None:
        now = self._clock()
        while self._items:
            key, (expires, _flash) = next(iter(self._items.items()))
            if expires > now:
                break
            del self._items[key]
