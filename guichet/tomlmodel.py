"""A TOML file validated into a pydantic model, with one short error naming the key: the
counter's config, its first-boot file and the image description all read their files so.

``ConfigFileError.cause`` keeps the TOML or pydantic error for a caller that words its own
messages (the first-boot file speaks French to a technician).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from guichet.errors import ConfigFileError
from guichet.messages import first_error

M = TypeVar("M", bound=BaseModel)


def read_text(path: Path) -> str:
    """The file's UTF-8 text; ``ConfigFileError`` when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigFileError(f"{path}: not UTF-8 text") from None


def loads(text: str, *, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{source}: not valid TOML: {exc}", cause=exc) from None


def validate(model: type[M], raw: dict[str, Any], *, source: str) -> M:
    """``raw`` as ``model``; the error names the first key at fault and counts the others."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        key, message = first_error(exc, top="(top level)")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigFileError(f"{source}: key '{key}': {message}{more}", cause=exc) from None


def parse(model: type[M], text: str, *, source: str) -> M:
    return validate(model, loads(text, source=source), source=source)


def load(model: type[M], path: Path) -> M:
    return parse(model, read_text(path), source=str(path))
