"""The image build's smoke import (appliance/smoke.py): every counter module imports here, and
a module that does not is named with why."""

from __future__ import annotations

from pathlib import Path

import pytest

import appliance
from appliance.smoke import broken_modules


def test_every_counter_module_imports() -> None:
    assert broken_modules() == []


def test_a_module_that_does_not_import_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "zz_casse.py").write_text("from aiortc.rtp import NOM_QUI_N_EXISTE_PAS\n")
    monkeypatch.setattr(appliance, "__path__", [*appliance.__path__, str(tmp_path)])
    broken = broken_modules()
    assert [name for name, _ in broken] == ["appliance.zz_casse"]
    assert "NOM_QUI_N_EXISTE_PAS" in broken[0][1]
