"""Short system tools run from the loop (``amixer``, ``systemctl``, ``aplay``…): one
subprocess, its output collected, killed if it does not answer in time. Callers turn the
outcome into their own French errors."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class ToolRun:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def reason(self, *, last: bool = False) -> str | None:
        """The tool's first (or last) line of complaint, if it said one."""
        lines = [line for line in self.stderr.decode(errors="replace").splitlines() if line]
        if not lines:
            return None
        return (lines[-1] if last else lines[0]).strip()


async def run_tool(argv: list[str], *, timeout_s: float, stdin: bytes | None = None) -> ToolRun:
    """Run ``argv``; ``FileNotFoundError`` if it is not installed, ``TimeoutError`` (the
    process killed and reaped) if it did not finish within ``timeout_s``."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout_s):
            stdout, stderr = await process.communicate(stdin)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    code = process.returncode
    return ToolRun(code if code is not None else -1, stdout, stderr)
