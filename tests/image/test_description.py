"""The image's declarative description: the real one loads; broken ones fail with the key named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from image.builder.model import DescriptionError, load_description

IMAGE_DIR = Path(__file__).parents[2] / "image"


@pytest.fixture
def description_copy(tmp_path: Path) -> Path:
    """A copy of image/ to break in one place."""
    root = tmp_path / "image"
    shutil.copytree(IMAGE_DIR, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), "utf-8")


def test_the_real_description_loads() -> None:
    description = load_description(IMAGE_DIR)
    assert [layer.name for layer in description.layers] == [
        "base", "raspberrypi", "counter", "hardening", "firstboot",
    ]  # fmt: skip
    packages = description.packages()
    for needed in ("raspi-firmware", "linux-image-arm64", "python3-aiortc", "cups", "systemd-sysv"):
        assert needed in packages
    assert packages == sorted(set(packages))
    assert description.image.components == ["main", "non-free-firmware"]


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        ("image.toml", 'suite = "trixie"', 'suite = "trixie"\nsuit = "x"', "key 'suit'"),
        ("image.toml", '"hardening", ', '"hardening", "hardening", ', "listed twice"),
        ("image.toml", "boot_mib = 256", "boot_mib = 8", "key 'partitions.boot_mib'"),
        ("layers/base/layer.toml", '"dbus",', '"Dbus_X",', "key 'packages.5'"),
        ("layers/base/layer.toml", 'name = "base"', 'name = "other"', "directory's name"),
        (
            "layers/counter/layer.toml",
            'source = "files/guichet.service"',
            'source = "files/absent.service"',
            "does not exist",
        ),
        (
            "layers/counter/layer.toml",
            'source = "files/guichet.service"',
            'source = "files/guichet.service"\ncontent = "x"',
            "exactly one of 'source' or 'content'",
        ),
        (
            "layers/counter/layer.toml",
            'dest = "/etc/systemd/system/guichet.service"',
            'dest = "etc/relative"',
            "absolute path",
        ),
        ("layers/hardening/layer.toml", '"/var/tmp",', '"/etc",', "cannot be made writable"),
        ("layers/counter/layer.toml", '"cups.service"]', '"cups"]', "key 'enable.2'"),
        ("layers/base/layer.toml", 'content = "@hostname@\\n"', 'content = "@nope@"', "@nope@"),
        ("layers/base/layer.toml", 'name = "base"', 'name = "base"\npackage = []', "'package'"),
    ],
)
def test_broken_descriptions_are_refused(
    description_copy: Path, file: str, old: str, new: str, expected: str
) -> None:
    _edit(description_copy / file, old, new)
    with pytest.raises(DescriptionError) as caught:
        load_description(description_copy)
    assert expected in str(caught.value)


def test_a_key_after_a_table_is_caught(description_copy: Path) -> None:
    """TOML puts keys after ``[[files]]`` into that table: the model refuses it."""
    layer = description_copy / "layers" / "firstboot" / "layer.toml"
    layer.write_text(layer.read_text("utf-8") + '\nenable = ["x.service"]\n', "utf-8")
    with pytest.raises(DescriptionError, match=r"boot_files\.0\.enable"):
        load_description(description_copy)
