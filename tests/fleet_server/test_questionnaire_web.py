"""The questionnaire editor: a save is a new version; invalid input is refused in French and
the version stays."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from fleet_server.models import AuditEntry, QuestionnaireVersion
from tests.support.webapp import CSRF_RE, WebApp, running_app


@pytest.fixture
def web(db_url: str) -> Iterator[WebApp]:
    with running_app(db_url) as app:
        app.add_user("admin", "admin")
        assert app.login().status_code == 303
        yield app


def form(web: WebApp, **changes: str) -> dict[str, str]:
    token = CSRF_RE.search(web.client.get("/admin/questionnaire").text)
    assert token
    data = {
        "csrf_token": token.group(1), "timeout_s": "20", "spoken": "1",
        "q0_key": "dealt_with", "q0_text": "Votre demande a-t-elle été traitée ?",
        "q0_kind": "choice", "q0_choices": "yes | Oui\npartly | En partie\nno | Non",
        "q1_key": "satisfaction", "q1_text": "Êtes-vous satisfait ?", "q1_kind": "faces",
        "q2_key": "travel", "q2_text": "Vous seriez-vous déplacé ?", "q2_kind": "choice",
        "q2_choices": "no | Non | 0\nfar | Oui, loin | 30",
    }  # fmt: skip
    data.update(changes)
    return data


def versions(web: WebApp) -> list[int]:
    with web.sessions() as session:
        return list(session.scalars(select(QuestionnaireVersion.version).order_by("version")))


def test_saving_creates_version_2(web: WebApp) -> None:
    assert versions(web) == [1]
    page = web.client.post("/admin/questionnaire", data=form(web))
    assert page.status_code == 200
    assert 'id="current-version">2<' in page.text
    assert 'data-version="1"' in page.text
    assert 'data-version="2"' in page.text
    with web.sessions() as session:
        row = session.get_one(QuestionnaireVersion, 2)
        assert (row.timeout_s, row.spoken, row.created_by) == (20, True, "admin")
        assert [q["key"] for q in row.questions] == ["dealt_with", "satisfaction", "travel"]
        assert row.questions[2]["choices"][1] == {"value": "far", "label": "Oui, loin", "km": 30}
        assert session.scalars(select(AuditEntry.action)).all() == ["questionnaire.save"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"q1_key": "dealt_with"}, "Deux questions ont la même clé."),
        (
            {"q0_choices": "yes | Oui"},
            "Question 1 : une question à choix a au moins deux réponses.",
        ),
        ({"q0_key": "Bad Key"}, "Question 1, clé : minuscules, chiffres et « _ » seulement."),
        ({"q2_choices": "no Non"}, "Question 3 : écrivez chaque réponse"),
        ({"timeout_s": "2"}, "Délai par question : valeur refusée"),
    ],
)
def test_invalid_input_is_refused_in_french_and_the_version_stays(
    web: WebApp, changes: dict[str, str], message: str
) -> None:
    refused = web.client.post("/admin/questionnaire", data=form(web, **changes))
    assert refused.status_code == 400
    assert message in refused.text.replace("&#39;", "'")
    assert versions(web) == [1]
