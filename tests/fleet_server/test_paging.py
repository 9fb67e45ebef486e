"""Keyset pagination (fleet_server.paging) on both databases: every row once and in order over
the pages, forwards and back, with ties on the time column; cursors that were not made here
are refused; text search and "until this day" filters."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session, sessionmaker

from fleet_server import paging
from fleet_server.models import Alert, AuditEntry, CallRecord, Device
from guichet.schedule import PARIS
from tests.fleet_server.storage_support import migrated

T0 = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # the night summer time starts in Paris
ALERTS = 47
BY_RAISED = paging.Ordering(Alert.raised_at, Alert.id, descending=True)


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    with migrated(db_url) as factory:
        yield factory


def _seed_alerts(sessions: sessionmaker[Session]) -> list[int]:
    """ALERTS alerts on two counters, five at a time sharing one ``raised_at`` (ties); returns
    their ids in the order raised_at then id, both descending."""
    with sessions.begin() as session:
        session.add_all([Device(id="g-1", site="A"), Device(id="g-2", site="B")])
        session.flush()
        session.execute(
            insert(Alert),
            [
                {
                    "device_id": f"g-{1 + i % 2}",
                    "kind": f"k{i}",
                    "raised_at": T0 - timedelta(minutes=i // 5),
                }
                for i in range(ALERTS)
            ],
        )
    with sessions() as session:
        rows = session.execute(select(Alert.id, Alert.raised_at)).all()
    return [i for i, _ in sorted(rows, key=lambda r: (r[1], r[0]), reverse=True)]


def _page(
    session: Session, after: str | None = None, before: str | None = None
) -> paging.Page[int]:
    return paging.keyset_page(
        session,
        select(Alert.id),
        BY_RAISED,
        lambda row: int(row[0]),
        after=after,
        before=before,
        limit=10,
    )


def test_pages_hold_every_row_once_in_order_forwards_and_back(
    sessions: sessionmaker[Session],
) -> None:
    want = _seed_alerts(sessions)
    with sessions() as session:
        forward: list[paging.Page[int]] = [_page(session)]
        while forward[-1].next_cursor is not None:
            forward.append(_page(session, after=forward[-1].next_cursor))
        assert [i for p in forward for i in p.items] == want
        assert [len(p.items) for p in forward] == [10, 10, 10, 10, 7]
        assert {p.total for p in forward} == {ALERTS}
        assert forward[0].prev_cursor is None

        backward = [forward[-1]]
        while backward[-1].prev_cursor is not None:
            backward.append(_page(session, before=backward[-1].prev_cursor))
        assert [p.items for p in reversed(backward)] == [p.items for p in forward]
        assert backward[-1].next_cursor is not None  # the first page, reached backwards


def test_what_is_counted(sessions: sessionmaker[Session]) -> None:
    _seed_alerts(sessions)
    counts: list[str] = []

    def spy(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "count(" in statement.lower():
            counts.append(statement)

    with sessions() as session:
        event.listen(session.get_bind(), "before_cursor_execute", spy)
        stmt = select(Alert.id).join(Device, Device.id == Alert.device_id)
        page = paging.keyset_page(session, stmt, BY_RAISED, lambda r: r[0], counted=False)
        assert page.total is None
        assert len(page.items) == ALERTS  # all on one page of 50
        assert page.next_cursor is None
        assert counts == []

        whole = paging.keyset_page(session, stmt, BY_RAISED, lambda r: r[0])
        assert whole.total == ALERTS
        assert counts == []  # the whole list on its first page: its length is the total

        cheaper = paging.keyset_page(
            session,
            stmt,
            BY_RAISED,
            lambda r: r[0],
            limit=10,
            count_stmt=select(Alert.id).where(Alert.kind != "k0"),
        )
        assert cheaper.total == ALERTS - 1  # what count_stmt selects
        assert len(counts) == 1
        assert "JOIN" not in counts[0]
        event.remove(session.get_bind(), "before_cursor_execute", spy)


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor!",
        "",  # empty JSON
        paging.Ordering(Device.id).encode(["only-one-value"]),
        BY_RAISED.encode(["2026-03-28T22:00:00", 1]),  # a time without its zone
        BY_RAISED.encode(["yesterday", 1]),
        BY_RAISED.encode([T0, True]),  # a bool is not an id
        BY_RAISED.encode([T0, "1"]),
    ],
)
def test_cursors_not_made_here_are_refused(cursor: str) -> None:
    with pytest.raises(paging.BadCursorError):
        BY_RAISED.decode(cursor)


def test_cursors_carry_times_and_uuids_exactly() -> None:
    order = paging.Ordering(CallRecord.requested_at, CallRecord.id, descending=True)
    key = (T0.replace(microsecond=123456), uuid.uuid4())
    assert order.decode(order.encode(key)) == key
    fleet = paging.Ordering(Device.site, Device.id)
    assert fleet.decode(fleet.encode(("Vallée de la Gorre", "g-1"))) == (
        "Vallée de la Gorre",
        "g-1",
    )


def test_calls_page_by_uuid_ties(sessions: sessionmaker[Session]) -> None:
    """Calls requested at the same instant are told apart by their UUID, on both databases."""
    with sessions.begin() as session:
        session.add(Device(id="g-1", site="A"))
        session.flush()
        calls = [
            {"id": uuid.uuid4(), "device_id": "g-1", "service": "caf", "requested_at": T0}
            for _ in range(23)
        ]
        session.execute(insert(CallRecord), calls)
    order = paging.Ordering(CallRecord.requested_at, CallRecord.id, descending=True)
    seen: list[uuid.UUID] = []
    after = None
    with sessions() as session:
        while True:
            page = paging.keyset_page(
                session, select(CallRecord.id), order, lambda r: r[0], after=after, limit=4
            )
            seen.extend(page.items)
            if page.next_cursor is None:
                break
            after = page.next_cursor
    assert seen == sorted((c["id"] for c in calls), reverse=True)


def test_text_search_takes_wildcards_literally(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        for device_id, name in (
            ("g-1", "Mairie 100%"),
            ("g-2", "Mairie_2"),
            ("g-3", "MAIRIE 1000"),
        ):
            session.add(Device(id=device_id, name=name))

    def matching(text: str) -> list[str]:
        stmt = select(Device.id).where(paging.contains(text, Device.name)).order_by(Device.id)
        with sessions() as session:
            return list(session.scalars(stmt))

    assert matching("mairie 1") == ["g-1", "g-3"]
    assert matching("100%") == ["g-1"]
    assert matching("_") == ["g-2"]


def test_until_a_day_ends_at_midnight_in_the_day_s_own_zone(
    sessions: sessionmaker[Session],
) -> None:
    day = date(2026, 3, 29)  # summer time starts: Paris midnight of the 30th is 22:00 UTC
    paris_midnight = datetime(2026, 3, 30, tzinfo=PARIS)
    with sessions.begin() as session:
        for n, at in enumerate((paris_midnight - timedelta(seconds=1), paris_midnight)):
            session.add(AuditEntry(at=at, actor="a", action="user.update", target=str(n)))
    with sessions() as session:

        def until(tz: object) -> list[str]:
            where = paging.until_day(AuditEntry.at, day, tz)  # type: ignore[arg-type]
            return list(session.scalars(select(AuditEntry.target).where(where)))

        assert until(PARIS) == ["0"]
        assert sorted(until(UTC)) == ["0", "1"]  # both before midnight UTC of the 30th
