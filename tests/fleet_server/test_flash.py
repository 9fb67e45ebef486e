"""The forms' flash (``fleet_server/web/flash.py``): what a refused form keeps (never a
secret), taken once, by its own session only, on the page it names, and forgotten in time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fleet_server.web.flash import (
    MAX_FLASH_CHARS,
    NO_FLASH,
    Flash,
    FlashStore,
    kept_values,
)
from tests.support.webapp import CSRF_RE, WebApp, running_app


def test_kept_values_drop_secrets_and_files() -> None:
    kept = kept_values(
        [
            ("username", "marie"),
            ("password", "correct horse battery staple"),
            ("new_password", "another one"),
            ("csrf_token", "abc"),
            ("api_token", "gpa_x"),
            ("totp_secret", "JBSWY3DP"),
            ("agents", "3"),
            ("agents", "5"),
            ("scan", object()),  # an uploaded file
        ]
    )
    assert kept == {"username": ("marie",), "agents": ("3", "5")}


def test_kept_values_give_up_beyond_their_size() -> None:
    assert kept_values([("note", "x" * (MAX_FLASH_CHARS + 1))]) == {}


def test_a_flash_answers_for_its_own_form_only() -> None:
    flash = Flash("/p", "rules", "Heure invalide.", None, {"start_time": ("25:00",)})
    assert flash.error_for("rules") == "Heure invalide."
    assert flash.error_for("permanences") is None
    assert flash.value("rules", "start_time") == "25:00"
    assert flash.value("permanences", "start_time", "09:00") == "09:00"
    assert flash.value("rules", "end_time", None) == ""
    assert flash.chosen("rules", "agents", [1]) == set()  # submitted with none chosen
    assert NO_FLASH.chosen("rules", "agents", [1, 2]) == {"1", "2"}


def test_a_refusal_names_the_field_it_is_about() -> None:
    flash = Flash("/p", "rules", "Heure invalide.", None, {}, about="start_time")
    assert flash.invalid("rules", "start_time")
    assert not flash.invalid("rules", "end_time")
    assert not flash.invalid("permanences", "start_time")
    notice = Flash("/p", "rules", None, "Règle ajoutée.", about="start_time")
    assert not notice.invalid("rules", "start_time")  # only an error marks a field


def test_the_store_forgets_after_its_time_and_beyond_its_capacity() -> None:
    now = [0.0]
    store = FlashStore(ttl_s=10.0, capacity=2, clock=lambda: now[0])
    first = store.put(Flash("/a"))
    now[0] = 5.0
    second = store.put(Flash("/b"))
    assert store.peek(first) is not None
    now[0] = 10.5  # the first is past its time, the second is not
    assert store.peek(first) is None
    assert store.peek(second) == Flash("/b")
    third, fourth = store.put(Flash("/c")), store.put(Flash("/d"))
    assert store.peek(second) is None  # pushed out by two newer ones
    assert len(store) == 2
    store.discard(third)
    assert [store.peek(k) for k in (third, fourth)] == [None, Flash("/d")]


@pytest.fixture
def web(db_url: str) -> Iterator[WebApp]:
    with running_app(db_url) as app:
        app.add_user("admin")
        assert app.login().status_code == 303
        yield app


def _create_service(web: WebApp, code: str) -> str:
    token = CSRF_RE.search(web.client.get("/admin/services").text)
    assert token
    data = {"code": code, "label": "Libellé tapé", "csrf_token": token.group(1)}
    answer = web.client.post("/admin/services", data=data, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/services#nouveau-service"
    return answer.headers["location"]


def test_a_refused_form_comes_back_once_with_what_was_typed(web: WebApp) -> None:
    _create_service(web, "Pas Un Code")  # refused: capitals and spaces
    assert web.client.get("/fleet/rows").status_code == 200  # another page leaves it alone
    page = web.client.get("/admin/services").text
    assert 'role="alert"' in page
    assert 'value="Pas Un Code"' in page
    assert 'value="Libellé tapé"' in page
    again = web.client.get("/admin/services").text  # a reload: shown once only
    assert 'role="alert"' not in again
    assert "Pas Un Code" not in again


def test_a_flash_belongs_to_its_session(web: WebApp) -> None:
    _create_service(web, "Pas Un Code")
    first_browser = dict(web.client.cookies)
    web.client.cookies.clear()  # another browser: another session, the same administrator
    assert web.login().status_code == 303
    assert "Pas Un Code" not in web.client.get("/admin/services").text
    web.client.cookies.clear()
    web.client.cookies.update(first_browser)
    assert 'value="Pas Un Code"' in web.client.get("/admin/services").text
