"""Spoken prompts through espeak-ng (the silent speaker is the port's fake, in
``appliance.hw.ports.speaker``).

``EspeakSpeaker.say`` returns at once: each utterance is one ``espeak-ng`` process, run by a
task on the loop (``asyncio.create_subprocess_exec``, so nothing blocks it). One at a time:
a new ``say`` cuts the previous utterance — its process is killed and reaped before the next
one starts — as when the citizen moves to the next option before the last was read out.
The text goes in on stdin (UTF-8), never on the command line.

How loud: ``volume_pct`` (0-100, the administrator's ``[accessibility] speech_volume_pct``)
is espeak-ng's amplitude (``-a``, 0-200; 50 % is its own default of 100).

Where the sound goes: espeak-ng's own audio output (the default ALSA/PulseAudio device), or,
with ``output``, a WAV file (``-w``) — for tests, or to check a voice without a loudspeaker.

A missing ``espeak-ng`` makes an absent speaker: logged once, then silent. Any other failure
of one utterance is logged and the next one is tried as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

BINARY = "espeak-ng"
DEFAULT_VOICE = "fr"
DEFAULT_WPM = 150  # espeak-ng's default is 175 words a minute: a little slower is clearer
UTF8_INPUT = "1"  # espeak-ng's ``-b 1``: the text on stdin is UTF-8
DEFAULT_VOLUME_PCT = 50  # espeak-ng's own amplitude (100 of 200)
MAX_AMPLITUDE = 200  # espeak-ng's ``-a`` range is 0-200


class EspeakSpeaker:
    """The counter's screens and questionnaire read aloud by ``espeak-ng -v fr``."""

    def __init__(
        self,
        *,
        voice: str = DEFAULT_VOICE,
        words_per_minute: int = DEFAULT_WPM,
        volume_pct: int = DEFAULT_VOLUME_PCT,
        output: Path | None = None,
        binary: str = BINARY,
    ) -> None:
        self._voice = voice
        self._wpm = words_per_minute
        self._amplitude = round(max(0, min(100, volume_pct)) * MAX_AMPLITUDE / 100)
        self._output = output
        self._binary = shutil.which(binary)
        self._task: asyncio.Task[None] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self.spoken = 0  # utterances said to the end (tests, self-test)
        self.cut = 0  # utterances cut by the next one or by ``stop``
        if self._binary is None:
            self._absent(binary)

    @property
    def present(self) -> bool:
        return self._binary is not None

    def say(self, text: str) -> None:
        """Start saying ``text`` (on the running loop), cutting the current utterance."""
        if self._binary is None or not text.strip():
            return
        previous = self._cancel()
        self._task = asyncio.get_running_loop().create_task(
            self._speak(self._binary, text, previous), name="speech"
        )

    def stop(self) -> None:
        self._cancel()

    async def wait_done(self) -> None:
        """Until the current utterance is said, cut or failed (tests, self-test)."""
        task = self._task
        if task is not None:
            await asyncio.wait([task])

    def close(self) -> None:
        self._cancel()
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    # --- internals ---------------------------------------------------------------------------

    def _cancel(self) -> asyncio.Task[None] | None:
        """Cut the current utterance; its task (kept for ``wait_done``) reaps the process."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        return task

    def _command(self, binary: str) -> list[str]:
        command = [binary, "-v", self._voice, "-s", str(self._wpm), "-a", str(self._amplitude)]
        command += ["-b", UTF8_INPUT]
        if self._output is not None:
            command += ["-w", str(self._output)]
        return command

    async def _speak(self, binary: str, text: str, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # its process is gone before this one starts
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command(binary),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:  # removed since start-up
            self._binary = None
            self._absent(binary)
            return
        except OSError as exc:
            logger.error("speech could not start: %s", exc)
            return
        self._process = process
        try:
            _, errors = await process.communicate(text.encode())
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            self.cut += 1
            raise
        finally:
            self._process = None
        if process.returncode == 0:
            self.spoken += 1
        else:
            detail = errors.decode(errors="replace").strip()[:200]
            logger.warning("speech failed (%s): %s", process.returncode, detail)

    @staticmethod
    def _absent(binary: str) -> None:
        logger.warning("%s not found: nothing is read aloud", binary)
