"""Printer keywords in French, read by both sides (guichet/printing.py)."""

from __future__ import annotations

from appliance.hw.ports.printer_status import ERROR_REASONS, WARNING_REASONS
from guichet.printing import REASON_LABELS, describe_reasons, reason_label, split_reason


def test_every_keyword_the_counter_judges_has_french_words() -> None:
    assert set(REASON_LABELS) >= (ERROR_REASONS | WARNING_REASONS)


def test_keywords_are_described_once_each_suffix_dropped_unknown_kept() -> None:
    assert split_reason("media-empty-error") == ("media-empty", "error")
    assert reason_label("toner-low-report") == "encre ou toner bientôt épuisé"
    assert reason_label("com.vendor-thing") == "com.vendor-thing"
    described = describe_reasons(["none", "door-open-error", "cover-open", "media-jam"])
    assert described == "capot ouvert, papier coincé"
    assert describe_reasons(["none"]) == ""
