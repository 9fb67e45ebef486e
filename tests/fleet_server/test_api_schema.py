"""The JSON API against its own OpenAPI document, property-based (issue 14, item 5).

Schemathesis reads ``/api/v1/openapi.json`` from the real app served by uvicorn (on SQLite
and on PostgreSQL, with seeded counters, alerts, a month of calls, a timetable and
appointments), then sends every operation generated requests, valid and invalid, with an
administrator's token. Every answer must be no server error, carry a status code the document
declares for that route, and match the declared response schema and content type: a
generated client works.

CI runs few examples per operation and mode (``GUICHET_API_EXAMPLES``, default 8: about a
minute per database). A longer campaign, e.g. before a release:
``GUICHET_API_EXAMPLES=300 pytest tests/fleet_server/test_api_schema.py``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.app import create_app
from fleet_server.db import make_engine, make_session_factory
from fleet_server.models import Alert, Release
from fleet_server.scheme import appointments
from fleet_server.security import auth
from fleet_server.serving import uvicorn_config
from fleet_server.updates import manage
from fleet_server.updates.waves import Canary, Rest
from guichet.contract import utcnow
from tests.fleet_server import appointment_support
from tests.support import stats_month, webapp
from tests.support.databases import migrate_fresh
from tests.support.mosquitto import Broker, free_port
from tests.support.webapp import PASSWORD, seed_devices

EXAMPLES = int(os.environ.get("GUICHET_API_EXAMPLES", "8"))
START_S = 10.0  # uvicorn starts in well under a second
Operation = APIOperation[Any, Any, Any, Any]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@contextmanager
def served(db_url: str, broker: Broker) -> Iterator[tuple[str, sessionmaker[Session]]]:
    """The app served by uvicorn in a thread of its own (schemathesis's calls are blocking),
    connected to a real Mosquitto: actions are sent as deployed, not refused for want of it."""
    migrate_fresh(db_url)
    settings = webapp.test_settings(
        db_url, ingest_enabled=True, mqtt_url=broker.url, mqtt_client_id="fleet-api-schema"
    )
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_S
    while not server.started:  # uvicorn offers no event to wait on
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    assert app.state.ctx.ingest.wait_connected(START_S)
    engine = make_engine(db_url)
    try:
        yield f"http://127.0.0.1:{port}", make_session_factory(engine)
    finally:
        server.should_exit = True
        thread.join(START_S)
        engine.dispose()


def seed(sessions: sessionmaker[Session]) -> str:
    """Something behind every route (a release and a draft rollout too); returns an
    administrator's API token."""
    seed_devices(sessions, 30)
    stats_month.seed(sessions, stats_month.plan())
    appointment_support.seed(sessions, PASSWORD)
    day = appointment_support.booking_day()
    with sessions.begin() as session:
        now = utcnow()
        session.add(Alert(device_id="guichet-00003", kind="disk", detail="95 %", raised_at=now))
        auth.upsert_user(session, "robot", PASSWORD, role="admin")
        release = Release(
            version="1.5.0", compatible="guichet-proche-rpi-arm64", size=10, sha256="a" * 64,
            path="/nowhere.raucb", uploaded_at=now, uploaded_by="robot",
        )  # fmt: skip
        session.add(release)
        session.flush()
        plan = manage.RolloutPlan(release_id=release.id, specs=[Canary(1), Rest()])
        manage.create(session, plan, actor="robot", actor_user_id=None)  # a draft to act on
        appointments.book(
            session, device_id="x1", service="caf", start=appointment_support.slot(day, 9),
            agent_id=None, citizen_name="Jeanne", citizen_phone="", created_by="accueil-x",
            now=now,
        )  # fmt: skip
    with sessions() as session:
        return auth.create_api_token(session, "robot")


def campaign(operation: Operation, mode: GenerationMode, url: str, token: str) -> str | None:
    """What went wrong on this operation in this mode, or None."""
    strategy = operation.as_strategy(generation_mode=mode)
    headers = {"Authorization": f"Bearer {token}"}

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(strategy)
        case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid: a route without parameters nor body
        return None
    except (Exception, BaseExceptionGroup) as exc:  # every operation's failures are reported
        return f"{operation.label} ({mode}): {exc}"
    return None


def test_every_answer_is_declared_and_no_server_error(db_url: str, broker: Broker) -> None:
    with served(db_url, broker) as (url, sessions):
        token = seed(sessions)
        schema = schemathesis.openapi.from_url(f"{url}/api/v1/openapi.json")
        operations: list[Operation] = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result  # every operation of the document is valid
            operations.append(result.ok())
        assert len(operations) >= 20  # the whole API, not an empty document
        failures = [
            failed
            for operation in operations
            for mode in GenerationMode
            if (failed := campaign(operation, mode, url, token)) is not None
        ]
    assert not failures, "\n\n".join(failures)
