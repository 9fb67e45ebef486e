"""Guichet Proche: shared pieces of the appliance and the fleet server."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("guichet-proche")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+src"
