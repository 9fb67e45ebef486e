"""Camera presence: V4L2 device nodes, picamera2 where it exists, and the fakes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from appliance.hw.absent import AbsentCamera
from appliance.hw.camera.presence import Picamera2Camera, V4l2Camera
from appliance.hw.ports import Camera
from appliance.hw.ports.camera import SimulatedCamera
from guichet.contract import DeviceHealth


async def test_v4l2_camera_without_its_node_is_absent(tmp_path: Path) -> None:
    camera = V4l2Camera(str(tmp_path / "video9"))
    assert isinstance(camera, Camera)
    state = await camera.state()
    assert state.health is DeviceHealth.ABSENT
    assert state.detail is not None
    assert "video9" in state.detail


async def test_v4l2_camera_reads_its_model_from_sysfs(tmp_path: Path) -> None:
    node = tmp_path / "dev" / "video0"
    node.parent.mkdir()
    node.touch()
    sysfs = tmp_path / "sys"
    (sysfs / "video0").mkdir(parents=True)
    (sysfs / "video0" / "name").write_text("HD Pro Webcam C920\n")
    state = await V4l2Camera(str(node), sysfs_root=sysfs).state()
    assert (state.health, state.model) == (DeviceHealth.OK, "HD Pro Webcam C920")


async def test_v4l2_camera_without_sysfs_name_is_still_present(tmp_path: Path) -> None:
    node = tmp_path / "video0"
    node.touch()
    state = await V4l2Camera(str(node), sysfs_root=tmp_path / "nothing").state()
    assert (state.health, state.model) == (DeviceHealth.OK, None)


@pytest.mark.skipif(
    importlib.util.find_spec("picamera2") is not None, reason="picamera2 is installed here"
)
async def test_picamera2_missing_is_absent() -> None:
    state = await Picamera2Camera().state()
    assert (state.health, state.detail) == (DeviceHealth.ABSENT, "picamera2 non installé")


async def test_simulated_and_absent_cameras() -> None:
    fake = SimulatedCamera()
    assert (await fake.state()).health is DeviceHealth.OK
    fake.present = False
    assert (await fake.state()).health is DeviceHealth.ABSENT
    none = await AbsentCamera().state()
    assert (none.health, none.detail) == (DeviceHealth.ABSENT, "not configured")
