"""The fleet server's settings, from ``GUICHET_*`` environment variables or a ``.env`` file."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleet_server.calls.turn import TURN_URL_RE, TurnIssuer
from fleet_server.security import proxies
from guichet.signalling import RESUME_WINDOW_S, IceServer

SECRET_KEY_BYTES = 32  # a demo run's own random key (nothing printed in the source signs)
MIN_SECRET_CHARS = 16  # GUICHET_SECRET_KEY and GUICHET_TURN_SECRET outside demo mode
# deploy/coturn/turnserver.conf's placeholder: a copied example is not a secret.
TURN_SECRET_PLACEHOLDER = "a-remplacer-par-openssl-rand-base64-32"  # noqa: S105 - refused
TURN_TTL_S = 4 * 3600  # a call's TURN credentials: longer than any call, and no longer


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GUICHET_", env_file=None, frozen=True)

    database_url: str = "sqlite:///var/guichet.sqlite3"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    # Fixed client id + persistent session: the broker keeps what we have not acknowledged.
    mqtt_client_id: str = "guichet-fleet-server"
    mqtt_ca_file: str | None = None
    ingest_enabled: bool = True
    # Signs session cookies. Required outside demo mode; a demo run makes its own.
    secret_key: str = ""
    demo: bool = False
    telemetry_retention_days: int = Field(default=30, ge=1)
    # Remote support's screenshots and logs (issue 14) are kept this long, then purged.
    support_retention_h: float = Field(default=7 * 24.0, gt=0, le=90 * 24)
    # A counter with no telemetry for this many intervals is "silent".
    silent_after_intervals: float = Field(default=3.0, gt=1)
    staleness_check_s: float = Field(default=5.0, gt=0)
    alert_offline_after_min: float = Field(default=5.0, ge=0)
    alert_disk_pct: float = 90.0
    alert_temperature_c: float = 80.0
    # Session cookie sent over HTTPS only, and HSTS on every response. Unset: on, except in
    # demo mode (plain HTTP on loopback). Set false only to serve plain HTTP on purpose.
    session_cookie_secure: bool | None = None
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or
    # networks, JSON list: ["127.0.0.1"]). None by default: the peer address is the client.
    trusted_proxies: list[str] = Field(default_factory=list)
    dashboard_refresh_s: float = Field(default=3.0, gt=0)
    # Calls: unanswered after ring_timeout_s → "missed"; a dropped link is waited for
    # call_resume_window_s before the call ends as "failed".
    ring_timeout_s: float = Field(default=120.0, gt=0)
    call_resume_window_s: float = Field(default=float(RESUME_WINDOW_S), gt=0)
    # Remote support's test call (docs/line-test.md): the automatic answerer measures the
    # line this long once the media connect (short: the counter is out of use meanwhile).
    test_call_measure_s: float = Field(default=10.0, gt=0, le=30)
    # Schedules: an appointment rings its agent from this long before its start; a closed
    # counter shows this number; the citizen's name and phone on an appointment are erased
    # this long after it; every counter's retained config (its next 14 days) is re-sent at
    # least this often, and at once after any change that concerns it.
    appointment_tolerance_min: int = Field(default=10, ge=0, le=120)
    closed_phone: str | None = Field(default=None, max_length=32)
    appointment_retention_days: int = Field(default=30, ge=0, le=365)
    config_refresh_s: float = Field(default=3600.0, gt=0)
    # STUN servers given to both ends, as JSON: [{"urls": ["stun:…"]}]. TURN servers are
    # refused here (their password would be static and long-lived): see turn_urls.
    ice_servers: list[IceServer] = Field(default_factory=list)
    # TURN relay (docs/turn.md): coturn's URLs, as JSON
    # (["turns:turn.example.fr:443?transport=tcp", "turn:turn.example.fr:3478"]), handed to
    # both parties of each answered call with credentials valid turn_ttl_s, made with the
    # secret coturn shares (static-auth-secret).
    turn_urls: list[str] = Field(default_factory=list)
    turn_secret: SecretStr = SecretStr("")
    turn_ttl_s: int = Field(default=TURN_TTL_S, ge=60, le=24 * 3600)
    # Mosquitto's password and ACL files, generated here (enrolment, revocation) and reloaded
    # with SIGHUP to the pid in broker_pid_file. Unset: the broker is managed elsewhere.
    broker_files_dir: Path | None = None
    broker_pid_file: Path | None = None
    # The accessibility statement (/accessibilite, docs/accessibility.md): who runs this
    # server, and how a person who cannot use a page reaches them (an e-mail address, a web
    # address or a phone number).
    operator_name: str | None = Field(default=None, max_length=200)
    accessibility_contact: str | None = Field(default=None, max_length=200)
    # Notifications of alerts (docs/notifications.md). E-mail goes through this SMTP relay
    # with STARTTLS ("starttls", port 587) or implicit TLS ("tls", 465), and a login when a
    # username is given; "none" (clear text) is accepted to a loopback relay only. The
    # relay's certificate is checked against the system's CAs, or smtp_ca_file.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = ""  # the From: address, e.g. "Guichet Proche <alertes@pays.fr>"
    smtp_ca_file: Path | None = None
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    # The delivery worker looks for due deliveries this often; a digest recipient's alerts
    # are gathered this long; a failed delivery is tried again after base × 2^(n-1)
    # seconds (at most notify_retry_max_s), notify_max_attempts times in all.
    notify_poll_s: float = Field(default=5.0, gt=0)
    notify_digest_min: float = Field(default=15.0, ge=0, le=24 * 60)
    # The daily summary e-mail leaves once this hour (Paris time) has begun.
    notify_summary_hour: int = Field(default=7, ge=0, le=23)
    notify_retry_base_s: float = Field(default=30.0, gt=0)
    notify_retry_max_s: float = Field(default=3600.0, gt=0)
    notify_max_attempts: int = Field(default=10, ge=1, le=100)
    # Software updates (docs/updates.md). Uploaded bundles are kept in releases_dir (not
    # personal data: the counters' system), at most release_max_mb each; they are checked
    # against the Pays's update CA (update_keyring, a PEM file; unset: uploads refused).
    # Counters fetch them from public_url (the server as they reach it, https://…; unset:
    # no rollout can start). The rollout runner looks at running rollouts every
    # rollout_check_s.
    releases_dir: Path = Path("var/releases")
    release_max_mb: int = Field(default=1024, ge=1, le=8192)
    update_keyring: Path | None = None
    public_url: str | None = Field(default=None, pattern=r"^https://[^\s/]+(/[^\s]*)?$")
    rollout_check_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> Settings:
        if self.session_cookie_secure is None:
            object.__setattr__(self, "session_cookie_secure", not self.demo)
        if not self.secret_key and self.demo:
            # A fresh key per run (frozen model: set once, here, before anyone reads it).
            object.__setattr__(self, "secret_key", secrets.token_urlsafe(SECRET_KEY_BYTES))
        if not self.secret_key:
            raise ValueError(
                "GUICHET_SECRET_KEY must be set to a random value outside demo mode "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if self.broker_files_dir is not None and not (self.mqtt_username and self.mqtt_password):
            raise ValueError(
                "GUICHET_BROKER_FILES_DIR needs the server's own broker account "
                "(GUICHET_MQTT_USERNAME and GUICHET_MQTT_PASSWORD)"
            )
        try:
            proxies.networks(self.trusted_proxies)
        except ValueError as exc:
            raise ValueError(f"GUICHET_TRUSTED_PROXIES: {exc}") from None
        if len(self.secret_key) < MIN_SECRET_CHARS:
            raise ValueError(
                f"GUICHET_SECRET_KEY is too short ({MIN_SECRET_CHARS} characters at least)"
            )
        self._check_turn()
        self._check_smtp()
        return self

    def _check_smtp(self) -> None:
        if not self.smtp_host:
            return
        if not self.smtp_from:
            raise ValueError("GUICHET_SMTP_HOST needs GUICHET_SMTP_FROM (the From: address)")
        if bool(self.smtp_username) != bool(self.smtp_password.get_secret_value()):
            raise ValueError(
                "GUICHET_SMTP_USERNAME and GUICHET_SMTP_PASSWORD go together (or neither)"
            )
        if self.smtp_security == "none" and not proxies.is_loopback_host(self.smtp_host):
            raise ValueError(
                "GUICHET_SMTP_SECURITY=none sends passwords and alerts in clear: only to a "
                "relay on this machine (127.0.0.1); use starttls or tls"
            )

    def _check_turn(self) -> None:
        for server in self.ice_servers:
            if any(url.startswith("turn") for url in server.urls):
                raise ValueError(
                    "GUICHET_ICE_SERVERS: TURN servers go in GUICHET_TURN_URLS, with "
                    "GUICHET_TURN_SECRET (each call gets its own expiring credentials)"
                )
        for url in self.turn_urls:
            if not TURN_URL_RE.fullmatch(url):
                raise ValueError(
                    f"GUICHET_TURN_URLS: {url!r} is not a TURN URL "
                    "(turn:host:port?transport=udp|tcp or turns:host:port?transport=tcp)"
                )
        secret = self.turn_secret.get_secret_value()
        if not self.turn_urls:
            return
        if not secret:
            raise ValueError(
                "GUICHET_TURN_URLS needs GUICHET_TURN_SECRET (coturn's static-auth-secret)"
            )
        if self.demo:
            return
        if secret == TURN_SECRET_PLACEHOLDER or len(secret) < MIN_SECRET_CHARS:
            raise ValueError(
                "GUICHET_TURN_SECRET must be set to a random value outside demo mode, the same "
                f"as coturn's static-auth-secret ({MIN_SECRET_CHARS} characters at least: "
                "openssl rand -base64 32)"
            )

    @property
    def release_max_bytes(self) -> int:
        return self.release_max_mb * 1024 * 1024

    def turn_issuer(self) -> TurnIssuer | None:
        """What hands out each call's TURN credentials (None: no TURN server)."""
        if not self.turn_urls:
            return None
        secret = self.turn_secret.get_secret_value()
        return TurnIssuer(tuple(self.turn_urls), secret, self.turn_ttl_s)
