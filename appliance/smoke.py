"""``python -m appliance.smoke``: import every module of the counter, as the image build does
inside the image's root (image/builder/project.py), so a name the image's own libraries lack
(Debian's aiortc, PyAV, pygame… are older than the tests' PyPI ones) stops the build instead of
the counter's service at its first call. Exits 1 naming each module that did not import."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import appliance


def broken_modules() -> list[tuple[str, str]]:
    """(module, why) for each module of ``appliance`` that does not import."""
    broken: list[tuple[str, str]] = []
    for module in pkgutil.walk_packages(appliance.__path__, "appliance."):
        if module.name == __name__:
            continue
        try:
            importlib.import_module(module.name)
        except Exception as exc:
            broken.append((module.name, f"{type(exc).__name__}: {exc}"))
    return broken


def main() -> int:
    broken = broken_modules()
    for name, why in broken:
        sys.stderr.write(f"{name}: {why}\n")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
