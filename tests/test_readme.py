"""The README's "What is here" tree matches the repository: every top-level entry is listed,
every listed folder exists, and the README links only files the repository has (no
``../shared/…``: whoever clones the repository has nothing beside it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# Not part of the layout: dot-files, local state and build output.
UNLISTED = {"README.md", "var", "build", "dist", "__pycache__"}


def _tree() -> list[str]:
    """The tree's paths: ``guichet/``, ``appliance/hw/``, ``run``…"""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"## What is here\n\n```\n(.*?)```", text, re.S)
    assert block is not None, "no 'What is here' tree in the README"
    paths: list[str] = []
    parent = ""
    for line in block.group(1).splitlines():
        if not line.startswith(" "):  # a top-level entry
            parent = line.split()[0]
            paths.append(parent)
        elif line.startswith("  ") and line[2] != " ":  # one of its folders
            paths.append(parent + line.split()[0])
        # else: the description goes on
    return paths


def test_the_tree_lists_every_top_level_entry() -> None:
    listed = {p.rstrip("/") for p in _tree() if p.count("/") <= 1}
    present = {
        p.name
        for p in ROOT.iterdir()
        if not p.name.startswith(".")
        and p.name not in UNLISTED
        and not p.name.endswith(".egg-info")
    }
    assert present - listed == set(), "in the repository, not in the README's tree"
    assert listed - present == set(), "in the README's tree, not in the repository"


def test_every_folder_in_the_tree_exists() -> None:
    for path in _tree():
        assert (ROOT / path).exists(), path
        assert (ROOT / path).is_dir() == path.endswith("/"), path


def test_the_readme_links_only_what_the_repository_has() -> None:
    text = README.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        assert not target.startswith(".."), target
        assert (ROOT / target).exists(), target
