"""Prometheus metrics of the fleet server, in their own registry (one per app instance)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages_ingested = Counter(
            "guichet_messages_ingested", "MQTT messages stored, by kind", ["kind"], registry=r
        )
        self.messages_rejected = Counter(
            "guichet_messages_rejected",
            "MQTT messages refused (malformed, unknown topic or version), by reason",
            ["reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "guichet_messages_duplicate", "QoS 1 messages already stored (redeliveries)", registry=r
        )
        self.ingest_errors = Counter(
            "guichet_ingest_errors", "Database errors while storing a batch", registry=r
        )
        self.ingest_lag = Histogram(
            "guichet_ingest_lag_seconds",
            "Time from the counter's timestamp to the database commit",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300, 3600),
            registry=r,
        )
        self.bundle_bytes = Counter(
            "guichet_bundle_bytes",
            "Bytes of update bundles served to counters (the ranges they asked for): what the"
            " rural lines carried for updates",
            registry=r,
        )
        self.devices = Gauge("guichet_devices", "Counters known, by state", ["state"], registry=r)
        self.open_alerts = Gauge("guichet_open_alerts", "Alerts currently open", registry=r)
        self.mqtt_connected = Gauge(
            "guichet_mqtt_connected",
            "1 while this process's ingest is connected to the broker",
            registry=r,
        )
        self.broker_connected = Gauge(
            "guichet_broker_connected",
            "1 while the fleet's ingest (whichever process runs it) has the broker, else 0",
            registry=r,
        )
