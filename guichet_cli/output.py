"""What the ``guichet`` command says to the person at the terminal, in French: a line on
standard output for results, on standard error for refusals and trouble. Logging stays for
logs (JSON lines, WARNING and up in the demo); these are the command's own words."""

from __future__ import annotations

import sys


def say(line: str) -> None:
    """A line of output, flushed at once (the demo's run goes on for hours)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def complain(line: str) -> None:
    """A line on standard error: why the command did not do what was asked."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
