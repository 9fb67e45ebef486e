"""Remote support's actions through the API, as a test waits for them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


async def action_settled(
    client: httpx.AsyncClient, request_id: str, *, device_id: str, timeout_s: float
) -> dict[str, Any]:
    """The action once the counter answered (or it timed out), polled through the API."""
    async with asyncio.timeout(timeout_s):
        while True:
            got = await client.get(f"/api/v1/devices/{device_id}/actions/{request_id}")
            assert got.status_code == 200, got.text
            body: dict[str, Any] = got.json()
            if body["state"] != "pending":
                return body
            await asyncio.sleep(0.1)
