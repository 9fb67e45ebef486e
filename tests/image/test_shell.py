"""Every piece of shell the image carries passes shellcheck: scripts and the layers' hooks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from image.builder.model import load_description

IMAGE_DIR = Path(__file__).parents[2] / "image"
SHELLCHECK = shutil.which("shellcheck")
# ./run test installs shellcheck: its absence is a broken set-up, not a reason to skip.


def _shellcheck(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert SHELLCHECK is not None, "shellcheck is not installed (apt-get install shellcheck)"
    return subprocess.run(
        [SHELLCHECK, "--severity=style", *extra, str(path)], capture_output=True, text=True
    )


def test_scripts_shipped_in_the_image() -> None:
    scripts = sorted(IMAGE_DIR.glob("layers/*/files/*.sh"))
    assert scripts
    for script in scripts:
        done = _shellcheck(script)
        assert done.returncode == 0, done.stdout


def test_run_script() -> None:
    done = _shellcheck(IMAGE_DIR.parent / "run")
    assert done.returncode == 0, done.stdout


def test_layer_hooks(tmp_path: Path) -> None:
    description = load_description(IMAGE_DIR)
    for layer in description.layers:
        hooks = [*layer.project_hooks, *layer.essential_hooks]
        for number, hook in enumerate(hooks):
            script = tmp_path / f"{layer.name}-{number}.sh"
            body = description.substitute(hook, where=layer.name)
            script.write_text(f'#!/bin/sh\nset -eu\nset -- "/root"\n{body}\n')
            done = _shellcheck(script)
            assert done.returncode == 0, f"{layer.name}: {hook}\n{done.stdout}"
