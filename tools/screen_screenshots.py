"""Regenerate docs/screenshots/screen-<state>.png: every screen state, drawn by the real adapter.

    SDL_VIDEODRIVER=dummy .venv/bin/python tools/screen_screenshots.py [OUT_DIR] [--size 1280x720]

The in-call screen shows FFmpeg's ``testsrc2`` pattern as the agent and ``smptehdbars``
as the self-view, generated on the spot (no image file is committed besides the PNGs).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import av

from appliance.hw.ports import OutOfServiceReason, ScreenInfo, ScreenState
from appliance.hw.screen_pygame.adapter import PygameScreen

logger = logging.getLogger("screen_screenshots")

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
SERVICE = "Caf — Allocations familiales"
EXAMPLES: dict[ScreenState, ScreenInfo] = {
    ScreenState.IDLE: {"service": SERVICE},
    ScreenState.WAITING: {"service": SERVICE, "waited_s": 83},
    ScreenState.IN_CALL: {"service": SERVICE},
    ScreenState.ENDED: {},
    ScreenState.MISSED: {"next_opening": "mardi 2 décembre à 9 h", "phone": "32 30"},
    ScreenState.OUT_OF_SERVICE: {"reason": OutOfServiceReason.CAMERA_MISSING},
    ScreenState.APPOINTMENT: {"service": SERVICE},
    ScreenState.CHOICE: {"choices": [SERVICE, "MSA", "France Travail"], "selected": 0},
    ScreenState.CLOSED: {
        "lines": ["Caf : mardi 14 h", "MSA : jeudi 9 h", "Carsat : sur rendez-vous"],
        "phone": "05 55 00 00 00",
    },
    ScreenState.SURVEY: {
        "question": "Êtes-vous satisfait de cet échange ?",
        "choices": ["Très mécontent", "Mécontent", "Moyen", "Content", "Très content"],
        "selected": 3,
        "faces": True,
        "step": 2,
        "steps": 3,
    },
    ScreenState.ENROLMENT: {"counter": "Guichet 1 — Mairie de Saint-Exemple", "code": "K7MP4X"},
    ScreenState.ENROLMENT_REFUSED: {
        "reason": "Le serveur de flotte a refusé l'enrôlement de ce guichet"
        " (jeton d'enrôlement invalide, expiré ou épuisé).\n"
        "Demandez un nouveau jeton au Pays, écrivez-le dans guichet.toml ([flotte] jeton)"
        " depuis un ordinateur, puis redémarrez le guichet."
    },
}

# Named variants of a state (issue 15): docs/screenshots/screen-<name>.png.
VARIANTS: dict[str, tuple[ScreenState, ScreenInfo]] = {
    "waiting-queue": (
        ScreenState.WAITING,
        {"service": SERVICE, "waited_s": 83, "position": 2, "estimated_wait_s": 480},
    ),
    "in-call-headset": (ScreenState.IN_CALL, {"service": SERVICE, "headset": True}),
    "in-call-text": (
        ScreenState.IN_CALL,
        {
            "service": SERVICE,
            "caption": ["Bonjour, je vous lis.", "Avez-vous votre numéro d'allocataire ?"],
            "typing": "Oui, il est sur la lettr",
            "typed": "Bonjour, je suis sourde.",
        },
    ),
    "choice-more-time": (
        ScreenState.CHOICE,
        {"choices": [SERVICE, "MSA", "France Travail"], "selected": 1, "more_time": 10},
    ),
    "survey-more-time": (
        ScreenState.SURVEY,
        {
            "question": "Votre demande a-t-elle été traitée ?",
            "choices": ["Oui", "En partie", "Non"],
            "selected": 1,
            "step": 1,
            "steps": 3,
            "more_time": 10,
        },
    ),
}


def lavfi_frame(source: str) -> av.VideoFrame:
    """One frame of an FFmpeg test source, e.g. ``testsrc2=size=1280x720``."""
    with av.open(source, format="lavfi") as container:
        for frame in container.decode(video=0):
            return frame
    raise RuntimeError(f"{source} gave no frame")


def save_all(out: Path, size: tuple[int, int], driver: str = "dummy") -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    agent = lavfi_frame("testsrc2=size=960x720:rate=30")  # 4:3: shows the letterbox
    me = lavfi_frame("smptehdbars=size=640x360:rate=30")
    screen = PygameScreen(driver=driver, size=size)
    shots = [(state.value.replace("_", "-"), state, info) for state, info in EXAMPLES.items()]
    shots += [(name, state, info) for name, (state, info) in VARIANTS.items()]
    written = []
    try:
        for name, state, info in shots:
            screen.show(state, **info)
            if state == ScreenState.IN_CALL:
                screen.show_frame(agent)
                screen.show_frame(me, self_view=True)
            path = out / f"screen-{name}.png"
            screen.screenshot(path)
            written.append(path)
            logger.info("wrote %s", path)
    finally:
        screen.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT")
    args = parser.parse_args(argv)
    width, height = (int(n) for n in args.size.split("x"))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    save_all(args.out, (width, height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
