"""Routing across a whole week, table-driven, on SQLite and PostgreSQL.

The week of Monday 22 to Wednesday 31 March 2027 holds the three access modes, Easter
(Sunday 28 March, also the night clocks go forward: 14 h is 13:00 UTC before, 12:00 UTC
after) and Easter Monday 29 March, a public holiday computed by the ``holidays`` package,
a partial closure, a whole-day closure and a one-off opening. Each row is a moment, the
counter, and what its button must do then, through ``fleet_server.scheme.schedules.route`` (what
the counter's screen also computes) and ``fleet_server.scheme.routing.route_call`` (what the
server does with a call request).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.models import (
    Appointment,
    Device,
    Permanence,
    ScheduleException,
    ScheduleRule,
    Service,
    User,
)
from fleet_server.scheme import routing, schedules
from fleet_server.scheme.schedules import ScheduleOptions
from fleet_server.security import auth
from guichet.schedule import PARIS, next_opening_lines
from tests.fleet_server.storage_support import migrated

MONTS, VALLEE = "monts-de-chalus", "vallee-de-la-gorre"
OPTIONS = ScheduleOptions(tolerance_min=10, phone="05 55 00 00 00")
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
AGENTS = ("caf-a", "caf-b", "ft-1", "ft-2", "carsat-1")


def paris(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A wall-clock time in Paris on ``day`` March 2027 (or April when day > 31)."""
    month, day = (4, day - 31) if day > 31 else (3, day)
    return datetime(2027, month, day, hour, minute, second, tzinfo=PARIS)


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, 3, day, hour, minute, tzinfo=UTC)


def _rule(
    service: str, mode: str, weekday: int, start: int, end: int, **scope: str
) -> ScheduleRule:
    return ScheduleRule(
        service=service,
        mode=mode,
        weekday=weekday,
        start_time=time(start),
        end_time=time(end),
        site=scope.get("site"),
        device_id=scope.get("device_id"),
    )


def seed(session: Session) -> dict[str, int]:
    """The week's rules; returns the agents' user ids by username."""
    session.add(Device(id=MONTS, site="Monts de Châlus", name="Mairie"))
    session.add(Device(id=VALLEE, site="Vallée de la Gorre", name="CIAS"))
    for username in AGENTS:
        service = username.rsplit("-", 1)[0].replace("ft", "france-travail")
        auth.upsert_user(session, username, "mot de passe long", role="agent", service=service)
    session.flush()
    ids = {u.username: u.id for u in session.scalars(select(User))}
    monts = {"site": "Monts de Châlus"}
    session.add_all(
        [
            _rule("caf", "slot", TUE, 14, 17, **monts),  # 13:00Z in winter, 12:00Z in summer
            _rule("caf", "slot", THU, 9, 12),  # every counter
            _rule("caf", "slot", MON, 14, 16),  # every counter; not on Easter Monday
            _rule("france-travail", "slot", THU, 11, 12, device_id=MONTS),
            _rule("carsat", "appointment", MON, 9, 12),
            _rule("carsat", "appointment", FRI, 14, 17),
            _rule("msa", "appointment", THU, 14, 17, **monts),
        ]
    )
    for day, half, start, end, agents in (
        (24, "am", 9, 12, [ids["ft-1"]]),
        (29, "am", 9, 12, [ids["ft-2"]]),  # Easter Monday: a dated permanence stands
        (31, "pm", 14, 17, [ids["ft-1"], ids["ft-2"]]),
    ):
        session.add(
            Permanence(
                service="france-travail",
                site="Monts de Châlus",
                day=date(2027, 3, day),
                half=half,
                start_time=time(start),
                end_time=time(end),
                agents=agents,
            )
        )
    session.add_all(
        [
            ScheduleException(
                service="caf",
                site="Monts de Châlus",
                day=date(2027, 3, 25),
                kind="closed",
                start_time=time(10),
                end_time=time(11),
                note="réunion",
            ),
            ScheduleException(  # every service, every counter, all day
                day=date(2027, 4, 1), kind="closed", note="inventaire"
            ),
            ScheduleException(
                service="caf",
                device_id=MONTS,
                day=date(2027, 3, 27),
                kind="open",
                start_time=time(9),
                end_time=time(12),
                note="samedi exceptionnel",
            ),
        ]
    )
    booked = datetime(2027, 3, 1, tzinfo=UTC)
    for service, start, minutes, agent, cancelled in (
        ("msa", paris(25, 14, 30), 30, None, None),
        ("carsat", paris(26, 14), 30, ids["carsat-1"], None),
        ("caf", paris(30, 15), 30, ids["caf-b"], None),
        ("carsat", paris(22, 10), 30, ids["carsat-1"], booked),  # cancelled: rings nobody
    ):
        session.add(
            Appointment(
                service=service,
                device_id=MONTS,
                start=start,
                end=start + timedelta(minutes=minutes),
                agent_user_id=agent,
                citizen_name="M. D.",
                created_at=booked,
                created_by="accueil",
                cancelled_at=cancelled,
            )
        )
    return ids


@dataclass(frozen=True)
class Row:
    at: datetime
    kind: str  # appointment / open / closed
    services: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()  # preferred agents, by username
    lines: tuple[str, ...] = ()  # a closed counter's next openings
    device: str = MONTS


CAF, FT = "caf", "france-travail"
RDV_MSA, RDV_CARSAT = "MSA : sur rendez-vous", "Carsat : sur rendez-vous"


def closed(caf: str, ft: str) -> tuple[str, ...]:
    """The four lines a closed Monts de Châlus counter shows, in the services' order."""
    return (f"Caf : {caf}", RDV_MSA, f"France Travail : {ft}", RDV_CARSAT)


WEEK: tuple[Row, ...] = (
    # Monday 22: a Carsat appointment window (walk-ins closed), its only booking cancelled.
    Row(paris(22, 10), "closed", lines=closed("aujourd'hui 14 h", "mercredi 9 h")),
    Row(paris(22, 14, 30), "open", (CAF,)),
    # Tuesday 23, winter time: the 14 h slot opens at 13:00 UTC.
    Row(utc(23, 12, 30), "closed", lines=closed("aujourd'hui 14 h", "demain 9 h")),
    Row(utc(23, 13), "open", (CAF,)),
    Row(
        utc(23, 13),
        "closed",
        lines=("Caf : jeudi 9 h", RDV_CARSAT),
        device=VALLEE,  # the Tuesday slot is for the Monts de Châlus site only
    ),
    # Wednesday 24: a France Travail morning permanence; start inclusive, end exclusive.
    Row(paris(24, 8, 59), "closed", lines=closed("demain 9 h", "aujourd'hui 9 h")),
    Row(paris(24, 9), "open", (FT,), ("ft-1",)),
    Row(paris(24, 11, 59, 59), "open", (FT,), ("ft-1",)),
    Row(paris(24, 12), "closed", lines=closed("demain 9 h", "demain 11 h")),
    # Thursday 25: Caf 9–12 closed 10–11 here, France Travail 11–12, MSA appointments.
    Row(paris(25, 9, 30), "open", (CAF,)),
    Row(paris(25, 10, 15), "closed", lines=closed("aujourd'hui 11 h", "aujourd'hui 11 h")),
    Row(paris(25, 10, 15), "open", (CAF,), device=VALLEE),  # the closure is this site's
    Row(paris(25, 11), "open", (CAF, FT)),  # two at once: the citizen chooses
    Row(paris(25, 14, 19), "closed", lines=closed("samedi 9 h", "lundi 9 h")),
    Row(paris(25, 14, 20), "appointment", ("msa",)),  # 10 minutes early
    Row(paris(25, 14, 59), "appointment", ("msa",)),
    Row(paris(25, 15), "closed", lines=closed("samedi 9 h", "lundi 9 h")),
    # Friday 26: a Carsat appointment with its agent.
    Row(paris(26, 13, 49), "closed", lines=closed("demain 9 h", "lundi 9 h")),
    Row(paris(26, 13, 50), "appointment", ("carsat",), ("carsat-1",)),
    Row(paris(26, 14, 29), "appointment", ("carsat",), ("carsat-1",)),
    Row(paris(26, 14, 30), "closed", lines=closed("demain 9 h", "lundi 9 h")),
    # Saturday 27: a one-off Caf morning at this counter.
    Row(paris(27, 9), "open", (CAF,)),
    Row(paris(27, 12), "closed", lines=closed("mardi 14 h", "lundi 9 h")),
    # Sunday 28: clocks go forward at 2 h; Monday is Easter Monday.
    Row(utc(28, 0, 30), "closed", lines=closed("mardi 14 h", "demain 9 h")),  # 1 h 30
    Row(utc(28, 1, 30), "closed", lines=closed("mardi 14 h", "demain 9 h")),  # 3 h 30
    # Monday 29, Easter Monday: weekly rules closed, the dated permanence stands.
    Row(paris(29, 10), "open", (FT,), ("ft-2",)),
    Row(paris(29, 14, 30), "closed", lines=closed("demain 14 h", "mercredi 14 h")),
    # Tuesday 30, summer time: the same 14 h slot opens at 12:00 UTC; a Caf appointment
    # with agent B inside it takes precedence.
    Row(utc(30, 11, 59), "closed", lines=closed("aujourd'hui 14 h", "demain 14 h")),
    Row(utc(30, 12), "open", (CAF,)),
    Row(paris(30, 14, 49), "open", (CAF,)),
    Row(paris(30, 14, 50), "appointment", (CAF,), ("caf-b",)),
    Row(paris(30, 15, 29), "appointment", (CAF,), ("caf-b",)),
    Row(paris(30, 15, 30), "open", (CAF,)),
    # Wednesday 31: an afternoon permanence with two agents; Thursday 1 April all closed.
    Row(paris(31, 14), "open", (FT,), ("ft-1", "ft-2")),
    Row(paris(31, 17), "closed", lines=closed("lundi 14 h", "jeudi 8 avril 11 h")),
)


@pytest.fixture
def week(db_url: str) -> Iterator[tuple[sessionmaker[Session], dict[str, int]]]:
    with migrated(db_url) as sessions:
        with sessions.begin() as session:
            ids = seed(session)
        yield sessions, ids


def test_easter_2027_is_a_holiday_and_the_dst_sunday() -> None:
    assert schedules.public_holiday(date(2027, 3, 29)) is not None
    assert schedules.public_holiday(date(2027, 3, 28)) is None  # Easter Sunday: a Sunday
    assert paris(28, 1, 30).utcoffset() == timedelta(hours=1)
    assert paris(28, 3, 30).utcoffset() == timedelta(hours=2)


def test_routing_across_the_week(week: tuple[sessionmaker[Session], dict[str, int]]) -> None:
    sessions, ids = week
    names = {v: k for k, v in ids.items()}
    wrong: list[str] = []
    with sessions() as session:
        for row in WEEK:
            route, schedule = schedules.route(session, row.device, row.at, OPTIONS)
            assert schedule is not None
            got = Row(
                row.at,
                route.kind,
                route.services,
                tuple(names[a] for a in route.preferred_agents),
                tuple(next_opening_lines(schedule, row.at)) if route.kind == "closed" else (),
                row.device,
            )
            if got != row:
                wrong.append(f"{row.at.astimezone(PARIS):%a %d %H:%M} {row.device}: {got}")
    assert wrong == [], "\n".join(wrong)


def test_the_call_request_follows_the_route(
    week: tuple[sessionmaker[Session], dict[str, int]],
) -> None:
    sessions, ids = week
    with sessions.begin() as session:
        session.get_one(Service, "caf").fallback_s = 3

    def call(at: datetime, requested: str | None = None) -> routing.Routed | routing.Refused:
        with sessions() as session:
            return routing.route_call(session, MONTS, at, requested, OPTIONS)

    # An appointment: its service, its agent first for the service's fallback time.
    booked = call(paris(30, 15))
    assert isinstance(booked, routing.Routed)
    assert (booked.service, booked.label) == ("caf", "Caf")
    assert (booked.preferred_agents, booked.fallback_s) == ((ids["caf-b"],), 3.0)
    assert booked.appointment_id is not None
    # A permanence: the agents on duty first; a plain slot: everyone at once.
    duty = call(paris(31, 15))
    assert isinstance(duty, routing.Routed)
    assert duty.preferred_agents == (ids["ft-1"], ids["ft-2"])
    assert duty.fallback_s == 30.0  # the migration's default
    slot = call(paris(30, 14))
    assert isinstance(slot, routing.Routed)
    assert (slot.service, slot.preferred_agents, slot.fallback_s) == ("caf", (), 0.0)
    # Two services open: the citizen's choice decides, and is required.
    assert call(paris(25, 11)) == routing.Refused(
        "choose_service", "Plusieurs services sont ouverts (Caf, France Travail) : choisissez."
    )
    chosen = call(paris(25, 11), "france-travail")
    assert isinstance(chosen, routing.Routed)
    assert (chosen.service, chosen.preferred_agents) == ("france-travail", ())
    # A choice of a service that is not open now is refused with its next openings.
    refused = call(paris(25, 11), "msa")
    assert isinstance(refused, routing.Refused)
    assert refused.code == "service_closed"
    assert refused.message.splitlines()[0] == "MSA est fermé."
    # Nothing open: the next openings and the phone number.
    nothing = call(paris(27, 12))
    assert nothing == routing.Refused(
        "closed",
        "Aucun service n'est ouvert.\n"
        "Caf : mardi 14 h\n"
        "MSA : sur rendez-vous\n"
        "France Travail : lundi 9 h\n"
        "Carsat : sur rendez-vous\n"
        "Téléphone : 05 55 00 00 00",
    )
    # During an appointment, the booked service may also be named by the counter.
    named = call(paris(26, 14), "carsat")
    assert isinstance(named, routing.Routed)
    assert named.preferred_agents == (ids["carsat-1"],)
    with sessions() as session:
        assert routing.service_now(session, MONTS, paris(25, 11), OPTIONS) is None
        assert routing.service_now(session, MONTS, paris(26, 14), OPTIONS) == ("carsat", "Carsat")
        assert routing.service_now(session, MONTS, paris(27, 12), OPTIONS) is None
