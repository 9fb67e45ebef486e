"""Webhooks: the JSON body of one alert event, its HMAC-SHA256 signature, and the POST.

Signature (``docs/notifications.md``): ``X-Guichet-Signature: t=<unix seconds>,v1=<hex>``
where ``<hex>`` is HMAC-SHA256 with the webhook's secret over ``<t>.`` followed by the raw
body — Stripe's scheme, so the timestamp is covered and a replayed old body can be refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime
from typing import Any, Final

import httpx

from fleet_server.models import NotificationDelivery
from fleet_server.mqtt.alert_rules import ALERT_LABELS
from fleet_server.mqtt.notify.mail import ERROR_MAX_CHARS, DeliveryError
from fleet_server.mqtt.notify.vocab import ALERT_EVENT_LABELS

logger = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "X-Guichet-Signature"
DELIVERY_HEADER: Final = "X-Guichet-Delivery"  # the same on every retry: receivers dedupe
EVENT_HEADER: Final = "X-Guichet-Event"
USER_AGENT: Final = "GuichetProche-Webhook/1"
BODY_VERSION: Final = 1


def body(d: NotificationDelivery) -> bytes:
    """The JSON body: machine fields, and the French words a chat channel can show as is."""
    kind_label = ALERT_LABELS.get(d.kind, d.kind)
    event_label = ALERT_EVENT_LABELS.get(d.event, d.event)
    where = d.device_name or d.device_id
    text = f"{event_label} : {kind_label} — {where}" + (f" ({d.site})" if d.site else "")
    data: dict[str, Any] = {
        "version": BODY_VERSION,
        "delivery_id": d.id,
        "event": f"alert.{d.event}",
        "at": d.at.isoformat(),
        "alert": {
            "id": d.alert_id,
            "kind": d.kind,
            "kind_label": kind_label,
            "detail": d.detail,
            "device_id": d.device_id,
            "device_name": d.device_name,
            "site": d.site,
        },
        "text": text,
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def signature(secret: str, timestamp: int, payload: bytes) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>." + payload>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


async def post(
    client: httpx.AsyncClient, url: str, secret: str, d: NotificationDelivery, now: datetime
) -> None:
    """POST one event; any 2xx is delivered, anything else a DeliveryError (tried again)."""
    payload = body(d)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature(secret, int(now.timestamp()), payload),
        DELIVERY_HEADER: str(d.id),
        EVENT_HEADER: f"alert.{d.event}",
    }
    try:
        response = await client.post(url, content=payload, headers=headers)
    except httpx.TimeoutException:
        raise DeliveryError("délai dépassé") from None
    except httpx.HTTPError as exc:
        text = f"connexion impossible : {type(exc).__name__} {exc}"
        raise DeliveryError(text[:ERROR_MAX_CHARS]) from None
    if not response.is_success:
        raise DeliveryError(f"réponse HTTP {response.status_code}")
