"""Camera presence: a V4L2 webcam (device node + sysfs name) or the Pi camera (picamera2).

Only presence and model are reported here; frames belong to the call. Nothing is opened:
opening a camera that a call is using would fail or, worse, steal it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from appliance.hw._bridge import short_error
from guichet.contract import DeviceHealth, Peripheral

logger = logging.getLogger(__name__)

V4L2_SYSFS = Path("/sys/class/video4linux")  # one directory per /dev/videoN, with a "name"
MAX_MODEL = 128  # the contract's bound on Peripheral.model


class V4l2Camera:
    """A UVC webcam seen through its device node, e.g. ``/dev/video0``."""

    def __init__(self, device: str = "/dev/video0", *, sysfs_root: Path = V4L2_SYSFS) -> None:
        self._device = Path(device)
        self._sysfs_root = sysfs_root

    async def state(self) -> Peripheral:
        return await asyncio.to_thread(self._read)

    def _read(self) -> Peripheral:
        if not self._device.exists():
            return Peripheral(health=DeviceHealth.ABSENT, detail=f"absente : {self._device}")
        name_file = self._sysfs_root / self._device.name / "name"
        try:
            model = name_file.read_text(encoding="utf-8", errors="replace").strip() or None
        except OSError:
            model = None  # the node exists (maybe a symlink from udev rules): still present
        return Peripheral(health=DeviceHealth.OK, model=model[:MAX_MODEL] if model else None)


class Picamera2Camera:
    """The Pi's CSI camera, via libcamera's camera list (picamera2 imported lazily)."""

    def __init__(self, index: int = 0) -> None:
        self._index = index

    async def state(self) -> Peripheral:
        return await asyncio.to_thread(self._read)

    def _read(self) -> Peripheral:
        try:
            from picamera2 import Picamera2  # only on a Pi with libcamera's bindings
        except ImportError:
            return Peripheral(health=DeviceHealth.ABSENT, detail="picamera2 non installé")
        except Exception as exc:  # a broken libcamera install fails at import time
            logger.warning("picamera2 import failed: %s", exc)
            return Peripheral(health=DeviceHealth.ERROR, detail=short_error(exc))
        try:
            cameras = Picamera2.global_camera_info()
        except Exception as exc:  # libcamera raises plain RuntimeErrors and worse
            logger.warning("libcamera camera list failed: %s", exc)
            return Peripheral(health=DeviceHealth.ERROR, detail=short_error(exc))
        if len(cameras) <= self._index:
            return Peripheral(health=DeviceHealth.ABSENT, detail="aucune caméra branchée")
        model = cameras[self._index].get("Model")
        return Peripheral(
            health=DeviceHealth.OK, model=str(model)[:MAX_MODEL] if model is not None else None
        )
