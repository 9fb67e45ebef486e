"""How the fleet server is served: one uvicorn configuration for ``guichet fleet serve``,
the demo and the tests' live server, so all three behave as deployed.

uvicorn's own proxy-header handling is off: it would believe ``X-Forwarded-For`` from any
connection on 127.0.0.1 (its default ``forwarded_allow_ips``). The app trusts forwarded
headers itself, from ``GUICHET_TRUSTED_PROXIES`` only (``security/proxies.py``).

A WebSocket message larger than the signalling contract's limit is refused by the protocol
layer (close 1009) before it is buffered: uvicorn's default would take 16 MiB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from guichet import signalling as sig

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI


def uvicorn_config(app: FastAPI, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=False,
        forwarded_allow_ips="",
        ws_max_size=sig.MAX_MESSAGE_BYTES,
        **options,
    )
