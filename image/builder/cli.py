"""``python -m image.builder`` — what ``./run image`` calls.

    python -m image.builder build [--only-base] [--top var/image]
    python -m image.builder plan            # print the commands a build would run
    python -m image.builder validate        # check image.toml and the layers

Building needs root (mmdebstrap, chroot, binfmt) and the Debian tools the run script
installs. Timings are printed at the end and written into the manifest.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from image.builder import assemble, base, manifest, project
from image.builder.model import DescriptionError, load_description
from image.builder.steps import Action, BuildError, Step, run_plan
from image.builder.workspace import Workspace

logger = logging.getLogger("image.builder")

IMAGE_DIR = Path(__file__).resolve().parent.parent
PROJECT_DIR = IMAGE_DIR.parent
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m image.builder")
    parser.add_argument("command", choices=["build", "plan", "validate"])
    parser.add_argument("--top", type=Path, default=PROJECT_DIR / "var" / "image")
    parser.add_argument("--only-base", action="store_true", help="stop after the cached base")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="==> %(message)s", stream=sys.stderr)
    try:
        description = load_description(IMAGE_DIR)
    except DescriptionError as exc:
        sys.stderr.write(f"image: {exc}\n")
        return EXIT_INVALID
    if args.command == "validate":
        sys.stdout.write(
            f"image.toml: ok ({len(description.layers)} layers,"
            f" {len(description.packages())} packages)\n"
        )
        return EXIT_OK
    workspace = Workspace(args.top.resolve())
    tools = base.tool_versions()
    key = base.cache_key(description, tools)
    if args.command == "plan":
        steps = full_plan(description, workspace, key, PROJECT_DIR)
        for step in steps:
            line = step.what if isinstance(step, Action) else " ".join(step.argv)
            sys.stdout.write(f"{step.what}\n    {line}\n")
        return EXIT_OK
    return _build(description, workspace, key, only_base=args.only_base)


def full_plan(
    description: project.Description, workspace: Workspace, key: str, project_dir: Path
) -> list[Step]:
    steps: list[Step] = []
    if not workspace.base_tar(key).exists():
        steps += base.base_plan(description, workspace, key)
    steps += project.project_plan(description, workspace, key, project_dir)
    steps += assemble.assemble_plan(description, workspace)
    return steps


def _build(
    description: project.Description, workspace: Workspace, key: str, *, only_base: bool
) -> int:
    started = time.monotonic()
    workspace.top.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    try:
        run_plan(base.binfmt_plan(mounted=(base.BINFMT_DIR / "status").exists()))
        if not workspace.base_tar(key).exists():
            t = time.monotonic()
            run_plan(base.base_plan(description, workspace, key), log_file=workspace.log)
            timings["base_s"] = time.monotonic() - t
        else:
            logger.info("base from the cache: %s", workspace.base_tar(key).name)
        if only_base:
            return EXIT_OK
        t = time.monotonic()
        run_plan(
            project.project_plan(description, workspace, key, PROJECT_DIR),
            log_file=workspace.log,
        )
        timings["project_s"] = time.monotonic() - t
        run_plan(assemble.assemble_plan(description, workspace, timings), log_file=workspace.log)
    except BuildError as exc:
        sys.stderr.write(f"image: {exc}\n(full log: {workspace.log})\n")
        return EXIT_FAILED
    total = time.monotonic() - started
    manifest.record_total(assemble.manifest_path(description, workspace), total)
    sys.stdout.write(assemble.summary(description, workspace, total))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
