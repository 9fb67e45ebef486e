"""The counter's CUPS privacy settings: written as plain lines CUPS 2.4 accepts.

The image runs ``cups-privacy.sh`` on the counter's ``cupsd.conf``; here the same script
runs on a copy of Debian's own default file (never on this machine's ``/etc/cups``) and the
real ``cupsd -t`` judges the result.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from image.builder.model import load_description

IMAGE_DIR = Path(__file__).parents[2] / "image"
SCRIPT = IMAGE_DIR / "layers" / "counter" / "files" / "cups-privacy.sh"
DEBIAN_DEFAULT = Path("/usr/share/cups/cupsd.conf.default")  # what postinst installs
SYSTEM_FILES_CONF = Path("/etc/cups/cups-files.conf")


def _run(conf: Path) -> subprocess.CompletedProcess[str]:
    assert shutil.which("cupsd"), "CUPS is not installed (./run test installs it)"
    return subprocess.run(
        ["sh", str(SCRIPT), str(conf), str(SYSTEM_FILES_CONF)],
        capture_output=True,
        text=True,
        check=False,
    )


def _cupsd_accepts(conf: Path) -> bool:
    done = subprocess.run(
        ["cupsd", "-t", "-c", str(conf), "-s", str(SYSTEM_FILES_CONF)],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0


def test_debian_default_gets_both_directives_and_cupsd_accepts_it(tmp_path: Path) -> None:
    conf = tmp_path / "cupsd.conf"
    shutil.copyfile(DEBIAN_DEFAULT, conf)
    done = _run(conf)
    assert done.returncode == 0, done.stderr
    lines = conf.read_text().splitlines()
    assert "PreserveJobFiles No" in lines
    assert "PreserveJobHistory No" in lines
    assert _cupsd_accepts(conf)
    # the rest of Debian's file is kept as it was
    assert conf.read_text().endswith(DEBIAN_DEFAULT.read_text())


def test_running_it_twice_changes_nothing_and_replaces_older_values(tmp_path: Path) -> None:
    conf = tmp_path / "cupsd.conf"
    conf.write_text(DEBIAN_DEFAULT.read_text() + "PreserveJobFiles Yes\nPreserveJobHistory 1d\n")
    assert _run(conf).returncode == 0
    once = conf.read_text()
    assert _run(conf).returncode == 0
    assert conf.read_text() == once
    assert "PreserveJobFiles Yes" not in once
    assert once.count("PreserveJobHistory") == 1


def test_a_file_cupsd_would_refuse_is_left_unchanged(tmp_path: Path) -> None:
    # What pycups' adminSetServerSettings writes on CUPS 2.4.2: cupsd then fails to start.
    conf = tmp_path / "cupsd.conf"
    broken = DEBIAN_DEFAULT.read_text() + "JobPrivateAccess default\nJobPrivateValues default\n"
    conf.write_text(broken)
    done = _run(conf)
    assert done.returncode != 0
    assert "JobPrivateAccess" in done.stderr
    assert conf.read_text() == broken
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cupsd.conf"]  # no temporary left


def test_the_image_runs_it_on_the_counters_cupsd_conf() -> None:
    description = load_description(IMAGE_DIR)
    (counter,) = [layer for layer in description.layers if layer.name == "counter"]
    shipped = {spec.dest: spec for spec in counter.files}
    assert "/usr/local/lib/guichet/cups-privacy.sh" in shipped
    assert shipped["/usr/local/lib/guichet/cups-privacy.sh"].mode == "0755"
    assert "/usr/local/lib/guichet/cups-privacy.sh /etc/cups/cupsd.conf" in counter.project_hooks
