"""The questionnaire editor: a save is a new version; invalid input is refused in French and
the version stays."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fleet_server.models import AuditEntry, QuestionnaireVersion
from tests.support.webapp import CSRF_RE, WebApp


def form(web: WebApp, **changes: str) -> dict[str, str]:
    token = CSRF_RE.search(web.client.get("/admin/questionnaire").text)
    assert token
    data = {
        "csrf_token": token.group(1), "timeout_s": "20", "spoken": "1",
        "q0_text": "Votre demande a-t-elle été traitée ?", "q0_use": "dealt_with",
        "q0_choices": "Oui\nEn partie\nNon",
        "q1_text": "Êtes-vous satisfait ?", "q1_use": "satisfaction",
        "q2_text": "Vous seriez-vous déplacé ?", "q2_use": "travel",
        "q2_choices": "Non | 0\nOui, loin | 30",
    }  # fmt: skip
    data.update(changes)
    return data


def versions(web: WebApp) -> list[int]:
    with web.sessions() as session:
        return list(session.scalars(select(QuestionnaireVersion.version).order_by("version")))


def test_saving_creates_version_2(web: WebApp) -> None:
    assert versions(web) == [1]
    page = web.client.post("/admin/questionnaire", data=form(web))
    assert [r.status_code for r in page.history] == [303]  # post/redirect/get
    assert (page.status_code, page.url.path) == (200, "/admin/questionnaire")
    assert "Version 2 enregistrée ; les guichets la reçoivent." in page.text
    assert 'id="current-version">2<' in page.text
    assert 'data-version="1"' in page.text
    assert 'data-version="2"' in page.text
    with web.sessions() as session:
        row = session.get_one(QuestionnaireVersion, 2)
        assert (row.timeout_s, row.spoken, row.created_by) == (20, True, "admin")
        assert [q["key"] for q in row.questions] == ["dealt_with", "satisfaction", "travel"]
        assert row.questions[0]["choices"][1] == {
            "value": "partly",
            "label": "En partie",
            "km": None,
        }
        # The travel question's answers keep their values where the wording did not change.
        assert row.questions[2]["choices"][0] == {"value": "no", "label": "Non", "km": 0}
        assert row.questions[2]["choices"][1] == {
            "value": "oui_loin", "label": "Oui, loin", "km": 30
        }  # fmt: skip
        assert session.scalars(select(AuditEntry.action)).all() == ["questionnaire.save"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"q1_use": "dealt_with"}, "Deux questions servent à « Demande traitée ? »"),
        ({"q0_choices": "Oui\nNon"}, "Question 1 : écrivez trois réponses, dans cet ordre"),
        ({"q2_choices": "Non\nOui"}, "Question 3 : écrivez chaque réponse « libellé | km »"),
        (
            {"q3_text": "Et le bruit ?", "q3_use": "choice", "q3_choices": "Trop fort"},
            "Question 4 : une question à choix a au moins deux réponses.",
        ),
        ({"timeout_s": "2"}, "Délai par question : valeur refusée"),
    ],
)
def test_invalid_input_is_refused_in_french_and_the_version_stays(
    web: WebApp, changes: dict[str, str], message: str
) -> None:
    typed = form(web, **changes)
    refused = web.client.post("/admin/questionnaire", data=typed)
    assert [r.status_code for r in refused.history] == [303]
    text = refused.text.replace("&#39;", "'")
    assert message in text
    assert versions(web) == [1]
    # The form comes back as it was typed, to be corrected (not as version 1 says).
    assert f'name="timeout_s" value="{typed["timeout_s"]}"' in text
    assert f'name="q0_text" value="{typed["q0_text"]}"' in text


def test_the_editor_speaks_french_and_shows_one_empty_block(web: WebApp) -> None:
    page = web.client.get("/admin/questionnaire").text
    assert page.count('class="question"') == 4  # the default's three, and one new
    assert "Nouvelle question (facultative)" in page
    for internal in ("dealt_with</code>", "Clé", "yes | Oui", "valeur | libellé"):
        assert internal not in page
    assert "Oui\nEn partie\nNon</textarea>" in page
    assert "Oui, moins de 10 km | 5" in page


def test_another_question_gets_a_key_from_its_text_and_keeps_it(web: WebApp) -> None:
    extra = {"q3_text": "Le guichet était-il facile à trouver ?", "q3_use": "choice",
             "q3_choices": "Oui\nNon"}  # fmt: skip
    assert web.client.post("/admin/questionnaire", data=form(web, **extra)).status_code == 200
    with web.sessions() as session:
        added = session.get_one(QuestionnaireVersion, 2).questions[3]
    assert added["key"] == "le_guichet_etait_il_facile_a_tro"  # 32 characters at most
    assert [c["value"] for c in added["choices"]] == ["oui", "non"]
    page = web.client.get("/admin/questionnaire").text
    assert 'name="q3_key" value="le_guichet_etait_il_facile_a_tro"' in page
    reworded = {"q3_text": "Avez-vous trouvé le guichet facilement ?", "q3_use": "choice",
                "q3_key": "le_guichet_etait_il_facile_a_tro", "q3_choices": "Oui\nNon"}  # fmt: skip
    web.client.post("/admin/questionnaire", data=form(web, **reworded))
    with web.sessions() as session:
        kept = session.get_one(QuestionnaireVersion, 3).questions[3]
    assert kept["key"] == "le_guichet_etait_il_facile_a_tro"  # its answers stay comparable


def test_a_question_is_removed_by_ticking_retirer(web: WebApp) -> None:
    web.client.post("/admin/questionnaire", data=form(web, q2_remove="1"))
    with web.sessions() as session:
        row = session.get_one(QuestionnaireVersion, 2)
    assert [q["key"] for q in row.questions] == ["dealt_with", "satisfaction"]
