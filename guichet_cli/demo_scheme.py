"""The demo's scheme: the four counters of the Pays d'Ouest Limousin, their services, the
agents' and reception's logins, and the timetable seeded into a fresh demo database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DemoCounter:
    device_id: str
    site: str
    name: str
    service: str  # the service its button calls


# The four sites of the Pays d'Ouest Limousin scheme, on which the counters' scheme is modelled.
COUNTERS = (
    DemoCounter("bandiat-tardoire-avenir", "Bandiat Tardoire Avenir", "Mairie", "caf"),
    DemoCounter("pays-de-la-meteorite", "Pays de la Météorite", "Mairie", "msa"),
    DemoCounter("monts-de-chalus", "Monts de Châlus", "Maison des associations", "france-travail"),
    DemoCounter(
        "vallee-de-la-gorre",
        "Vallée de la Gorre",
        "Centre intercommunal d'action sociale",
        "carsat",
    ),
)
SERVICES = ("caf", "msa", "france-travail", "carsat")  # seeded by the first migration


def agent_login(service: str) -> str:
    return f"agent-{service}"


def reception_login(counter: DemoCounter) -> str:
    return f"accueil-{counter.device_id}"


# The demo's timetable (Paris wall-clock): weekday (0 = Monday), start hour, end hour.
CAF_SLOTS = ((1, 14, 17), (3, 9, 12))  # walk-in, every counter
APPOINTMENT_WINDOWS = (("msa", 0, 9, 12), ("carsat", 4, 14, 17))  # every counter
PERMANENCE_WEEKDAYS = (0, 2)  # France Travail mornings at Monts de Châlus
PERMANENCE_DAYS = 28  # dated permanences seeded this far ahead


def seed_schedules(session: Any) -> None:
    """Caf weekly slots, MSA and Carsat appointment windows, France Travail permanences with
    its agent on duty. Once: a database that already has rules is left alone."""
    from datetime import date, time, timedelta

    from sqlalchemy import select

    from fleet_server.models import Permanence, ScheduleRule, User
    from fleet_server.scheme.schedules import public_holiday

    if session.scalar(select(ScheduleRule.id).limit(1)) is not None:
        return
    for weekday, start, end in CAF_SLOTS:
        session.add(ScheduleRule(service="caf", mode="slot", weekday=weekday,
                                 start_time=time(start), end_time=time(end)))  # fmt: skip
    for service, weekday, start, end in APPOINTMENT_WINDOWS:
        session.add(ScheduleRule(service=service, mode="appointment", weekday=weekday,
                                 start_time=time(start), end_time=time(end)))  # fmt: skip
    agent = session.scalar(select(User.id).where(User.username == agent_login("france-travail")))
    site = next(c.site for c in COUNTERS if c.service == "france-travail")
    today = date.today()
    for n in range(PERMANENCE_DAYS):
        day = today + timedelta(days=n)
        if day.weekday() in PERMANENCE_WEEKDAYS and not public_holiday(day):
            session.add(
                Permanence(service="france-travail", site=site, day=day, half="am",
                           start_time=time(9), end_time=time(12),
                           agents=[agent] if agent else [])
            )  # fmt: skip
