"""The counter as a process: ``guichet appliance check-config``, ``enrol`` and ``run``.

Loads and checks the config, sets up logging, runs the boot self-test when the button is
held, then runs :class:`appliance.app.Appliance` until SIGTERM/SIGINT. Exit codes: 0 done,
1 the counter cannot run, 2 a bad configuration.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from appliance import enrol
from appliance.app import Appliance
from appliance.boot_selftest import button_held_at_boot, run_boot_selftest
from appliance.config import ApplianceConfig, load_config
from appliance.errors import ApplianceError, ConfigError
from appliance.hw.audio.runtime import release_native_runtime
from guichet.errors import GuichetError
from guichet.logs import device_id_var, setup_logging

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def check_config(path: Path) -> int:
    """``guichet appliance check-config``: 0 and a one-line summary, or 2 and the error."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        sys.stderr.write(f"guichet: {exc}\n")
        return EXIT_CONFIG
    sys.stdout.write(
        f"{path}: ok (device {config.device.id}, fleet {config.fleet.mqtt_url},"
        f" MQTT {config.fleet.protocol})\n"
    )
    return EXIT_OK


def _configured(config_path: Path) -> ApplianceConfig | None:
    """The loaded config with logging set up for it, or None after one line on stderr."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        sys.stderr.write(f"guichet: {exc}\n")
        return None
    setup_logging(config.logging.level, json_lines=config.logging.json_lines)
    device_id_var.set(config.device.id)
    return config


def enrol_command(config_path: Path) -> int:
    """``guichet appliance enrol``: ask to join, wait for approval, store the credentials."""
    config = _configured(config_path)
    if config is None:
        return EXIT_CONFIG
    try:
        asyncio.run(enrol.enrol(config))
    except (ApplianceError, GuichetError, OSError) as exc:
        sys.stderr.write(f"guichet: {exc}\n")
        return EXIT_FAILED
    sys.stdout.write(f"{enrol.credentials_path(config)}: guichet enrôlé.\n")
    return EXIT_OK


def main(config_path: Path) -> int:
    """``guichet appliance run``: run the counter until SIGTERM/SIGINT."""
    config = _configured(config_path)
    if config is None:
        return EXIT_CONFIG
    try:
        if button_held_at_boot(config):
            run_boot_selftest(config)
        asyncio.run(_serve(config))  # enrols first, when needed, once it is ready
    except (ApplianceError, GuichetError, OSError) as exc:
        logger.critical("counter cannot run", extra={"error": str(exc)})
        return EXIT_FAILED
    finally:
        release_native_runtime()
    return EXIT_OK


async def _serve(config: ApplianceConfig) -> None:
    appliance = Appliance(config)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, appliance.request_stop)
    try:
        await appliance.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
