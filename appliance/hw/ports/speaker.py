"""Spoken prompts: the port and its fake (``SilentSpeaker``, which remembers what it was
asked to say; also the adapter for counters configured without speech)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Speaker(Protocol):
    """Spoken prompts (the questionnaire read aloud). Every method returns at once.

    One utterance at a time: ``say`` cuts whatever is being said; ``stop`` falls silent.
    """

    def say(self, text: str) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...


class SilentSpeaker:
    """No loudspeaker for prompts: says nothing, remembers what it was asked (demo, tests)."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def say(self, text: str) -> None:
        self.said.append(text)

    def stop(self) -> None:
        """Nothing is being said."""

    def close(self) -> None:
        """Nothing to release."""
