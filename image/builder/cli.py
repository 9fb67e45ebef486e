"""``python -m image.builder`` — what ``./run image`` calls.

    python -m image.builder build [--only-base] [--top var/image]
                                  [--update-key K --update-cert C [--update-keyring CA]]
    python -m image.builder plan            # print the commands a build would run
    python -m image.builder validate        # check image.toml and the layers

A build makes the card image and the update bundle of the same version
(image/builder/bundle.py); without a signing key (options or GUICHET_UPDATE_KEY/_CERT/_KEYRING)
both carry the development « DEV » key. Building needs root (mmdebstrap, chroot, binfmt) and
the Debian tools the run script installs. Timings are printed at the end and written into the
manifest.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import guichet
from image.builder import assemble, base, bundle, manifest, project
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
    parser.add_argument(
        "--update-key", help=f"bundle signing key: PEM or pkcs11: URI (${bundle.ENV_KEY})"
    )
    parser.add_argument("--update-cert", type=Path, help=f"its certificate (${bundle.ENV_CERT})")
    parser.add_argument(
        "--update-keyring", type=Path, help=f"the CA the counters trust (${bundle.ENV_KEYRING})"
    )
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
    try:
        signing = bundle.signing_from(
            os.environ, workspace, PROJECT_DIR,
            key=args.update_key, cert=args.update_cert, keyring=args.update_keyring,
        )  # fmt: skip
    except bundle.SigningError as exc:
        sys.stderr.write(f"image: {exc}\n")
        return EXIT_INVALID
    tools = base.tool_versions()
    key = base.cache_key(description, tools)
    if args.command == "plan":
        steps = full_plan(description, workspace, key, PROJECT_DIR, signing)
        for step in steps:
            line = step.what if isinstance(step, Action) else " ".join(step.argv)
            sys.stdout.write(f"{step.what}\n    {line}\n")
        return EXIT_OK
    return _build(description, workspace, key, signing, only_base=args.only_base)


def full_plan(
    description: project.Description,
    workspace: Workspace,
    key: str,
    project_dir: Path,
    signing: bundle.Signing,
) -> list[Step]:
    steps: list[Step] = []
    if not workspace.base_tar(key).exists():
        steps += base.base_plan(description, workspace, key)
    steps += project.project_plan(description, workspace, key, project_dir)
    steps += release_plan(description, workspace, signing, project_dir)
    return steps


def release_plan(
    description: project.Description,
    workspace: Workspace,
    signing: bundle.Signing,
    project_dir: Path,
    timings: dict[str, float] | None = None,
) -> list[Step]:
    """The card image and the update bundle of the same version, signed alike."""
    return [
        *bundle.dev_key_plan(signing),
        *assemble.assemble_plan(description, workspace, timings, keyring=signing.keyring),
        *bundle.bundle_plan(
            description,
            workspace,
            signing,
            guichet.__version__,
            build=manifest.git_commit(project_dir),
        ),
    ]


def _build(
    description: project.Description,
    workspace: Workspace,
    key: str,
    signing: bundle.Signing,
    *,
    only_base: bool,
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
        run_plan(
            release_plan(description, workspace, signing, PROJECT_DIR, timings),
            log_file=workspace.log,
        )
    except BuildError as exc:
        sys.stderr.write(f"image: {exc}\n(full log: {workspace.log})\n")
        return EXIT_FAILED
    total = time.monotonic() - started
    manifest.record_total(assemble.manifest_path(description, workspace), total)
    sys.stdout.write(assemble.summary(description, workspace, total))
    update = bundle.bundle_path(description, workspace, guichet.__version__)
    dev = " — DEV key: for development counters only" if signing.dev else ""
    sys.stdout.write(f"update bundle: {update}{dev}\n")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
