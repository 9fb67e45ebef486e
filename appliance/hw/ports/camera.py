"""The camera's presence and health: the port and its fake."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from guichet.contract import DeviceHealth, Peripheral


@runtime_checkable
class Camera(Protocol):
    """Presence and health of the camera (frames come with the call issue)."""

    async def state(self) -> Peripheral: ...


SIMULATED_CAMERA_MODEL = "Caméra simulée"  # shown on the counter's page: French


class SimulatedCamera:
    def __init__(self, *, present: bool = True, model: str = SIMULATED_CAMERA_MODEL) -> None:
        self.present = present
        self.model = model

    async def state(self) -> Peripheral:
        if not self.present:
            return Peripheral(health=DeviceHealth.ABSENT, detail="débranchée")
        return Peripheral(health=DeviceHealth.OK, model=self.model)
