"""The image description as validated models: ``image.toml`` and one ``layer.toml`` per layer.

Unknown keys are rejected everywhere, so a typo in a layer fails the build at once with the
file and key named, instead of silently producing a different image. Variables
(``@name@`` in file contents, destinations and hooks) come from ``image.toml``; a layer
that uses an undefined one is refused.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from guichet import tomlmodel
from guichet.errors import ConfigFileError

PACKAGE_RE = r"^[a-z0-9][a-z0-9+.-]+$"  # Debian policy 5.6.1
UNIT_RE = r"^[A-Za-z0-9@_.\\-]+\.(service|socket|timer|target|path|mount)$"
VARIABLE_RE = re.compile(r"@([a-z_][a-z0-9_]*)@")
MODE_RE = r"^0[0-7]{3}$"

Package = Annotated[str, Field(pattern=PACKAGE_RE)]
Unit = Annotated[str, Field(pattern=UNIT_RE)]
M = TypeVar("M", bound=BaseModel)


class DescriptionError(Exception):
    """The image description is invalid; the message names the file and the key."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _absolute(value: str) -> str:
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts:
        raise ValueError("must be an absolute path without '..'")
    return value


class FileSpec(_Model):
    """One file the layer puts in the root filesystem (project stage, no emulation)."""

    dest: str
    source: str | None = None  # relative to the layer's directory
    content: str | None = None
    mode: Annotated[str, Field(pattern=MODE_RE)] = "0644"

    @field_validator("dest")
    @classmethod
    def _dest(cls, value: str) -> str:
        return _absolute(value)

    @model_validator(mode="after")
    def _one_origin(self) -> FileSpec:
        if (self.source is None) == (self.content is None):
            raise ValueError("give exactly one of 'source' or 'content'")
        if self.source is not None and (
            PurePosixPath(self.source).is_absolute() or ".." in PurePosixPath(self.source).parts
        ):
            raise ValueError("'source' must be relative to the layer, without '..'")
        return self


class Layer(_Model):
    """A layer: what it adds to the image at the cached base stage and at the project stage."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]
    description: str = Field(min_length=1)
    packages: list[Package] = []
    essential_hooks: list[str] = []  # base stage, host side, "$1" is the root (mmdebstrap)
    files: list[FileSpec] = []
    boot_files: list[FileSpec] = []  # on the FAT partition, dest relative to its root
    project_hooks: list[str] = []  # project stage, inside the chroot (emulated)
    enable: list[Unit] = []
    volatile: list[str] = []  # tmpfs at run time
    persistent: list[str] = []  # moved to the data partition, bind-mounted back
    install_project: bool = False
    extra_wheels: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]] = []

    @field_validator("volatile", "persistent")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            _absolute(path)
            if path in ("/", "/etc", "/usr", "/boot"):
                raise ValueError(f"{path} cannot be made writable")
        return value


class Partitions(_Model):
    firmware_mib: int = Field(ge=33, le=1024)  # FAT32 needs 65525 clusters of 512 bytes
    boot_mib: int = Field(ge=64, le=2048)
    root_headroom_mib: int = Field(ge=0, le=8192)
    data_mib: int = Field(ge=16, le=4096)


class ImageSpec(_Model):
    """``image/image.toml``: the distribution, the layers in order, sizes and variables."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]
    suite: str = Field(pattern=r"^[a-z]+$")
    architecture: str = Field(pattern=r"^[a-z0-9]+$")
    components: list[str] = Field(min_length=1)
    mirror: str = Field(pattern=r"^https?://")
    layers: list[str] = Field(min_length=1)
    xz_level: int = Field(default=6, ge=0, le=9)
    partitions: Partitions
    variables: dict[str, str] = {}

    @field_validator("layers")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a layer is listed twice")
        return value


class Description(_Model):
    """The whole description once loaded: the image and its layers, in order."""

    root: Path
    image: ImageSpec
    layers: list[Layer]

    def packages(self) -> list[str]:
        return sorted({p for layer in self.layers for p in layer.packages})

    def layer_dir(self, layer: Layer) -> Path:
        return self.root / "layers" / layer.name

    def substitute(self, text: str, *, where: str) -> str:
        """Replace ``@name@`` with the image's variables; an unknown one is an error."""

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.image.variables:
                raise DescriptionError(f"{where}: unknown variable @{name}@")
            return self.image.variables[name]

        return VARIABLE_RE.sub(one, text)


def _read_toml(path: Path) -> dict[str, object]:
    try:
        return tomlmodel.loads(tomlmodel.read_text(path), source=str(path))
    except ConfigFileError as exc:
        raise DescriptionError(str(exc)) from None


def _validate(model: type[M], raw: dict[str, object], path: Path) -> M:
    try:
        return tomlmodel.validate(model, raw, source=str(path))
    except ConfigFileError as exc:
        raise DescriptionError(str(exc)) from None


def load_layer(path: Path) -> Layer:
    layer = _validate(Layer, _read_toml(path), path)
    if layer.name != path.parent.name:
        raise DescriptionError(f"{path}: key 'name': must be the directory's name")
    for spec in (*layer.files, *layer.boot_files):
        if spec.source is not None and not (path.parent / spec.source).is_file():
            raise DescriptionError(f"{path}: file '{spec.source}' does not exist")
    return layer


def load_description(root: Path) -> Description:
    """Load and check ``root/image.toml`` and every layer it names."""
    image = _validate(ImageSpec, _read_toml(root / "image.toml"), root / "image.toml")
    layers = [load_layer(root / "layers" / name / "layer.toml") for name in image.layers]
    description = Description(root=root, image=image, layers=layers)
    _check_variables(description)
    return description


def _check_variables(description: Description) -> None:
    """Every ``@variable@`` used anywhere must be defined (fail before building)."""
    for layer in description.layers:
        where = f"layer '{layer.name}'"
        texts = [*layer.project_hooks, *layer.essential_hooks]
        for spec in (*layer.files, *layer.boot_files):
            texts.append(spec.dest)
            if spec.content is not None:
                texts.append(spec.content)
            elif spec.source is not None:
                texts.append((description.layer_dir(layer) / spec.source).read_text("utf-8"))
        for text in texts:
            description.substitute(text, where=where)
