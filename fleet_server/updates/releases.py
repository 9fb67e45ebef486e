"""Uploaded releases (docs/updates.md, "Release"): a bundle received in chunks onto disk under
``settings.releases_dir`` — never whole in memory, never more than ``release_max_bytes`` —,
checked by ``bundle.check_upload`` (RAUC's signature check, then the manifest), then kept
under its version's name with its row in ``releases`` and an audit entry.

``receive`` is a coroutine (the web request's body); ``accept`` runs RAUC and the database in
the caller's worker thread; ``store`` does both, for the API's upload and the page's form.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fleet_server.errors import BundleError
from fleet_server.models import Device, Release
from fleet_server.security import audit
from fleet_server.settings import Settings
from fleet_server.updates.bundle import BundleInfo, check_upload
from guichet.contract import utcnow
from guichet.updates import version_key

logger = logging.getLogger(__name__)

INCOMING = "incoming"  # releases_dir's subfolder for uploads being received or checked
BUNDLE_SUFFIX = ".raucb"


class UploadTooLargeError(BundleError):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            f"Le fichier dépasse la taille permise ({max_bytes // (1024 * 1024)} Mo au plus)."
        )


def bundle_name(version: str, unique: str) -> str:
    """The kept file's name (the version is checked by ``VERSION_PATTERN``: no path);
    ``unique`` keeps two concurrent uploads of one version from sharing a file."""
    return f"guichet-proche-{version}-{unique}{BUNDLE_SUFFIX}"


async def receive(chunks: AsyncIterator[bytes], directory: Path, max_bytes: int) -> Path:
    """Write ``chunks`` to a new file in ``directory/incoming``; UploadTooLargeError (the file
    removed) past ``max_bytes``, BundleError when nothing came."""
    incoming = directory / INCOMING
    await asyncio.to_thread(incoming.mkdir, parents=True, exist_ok=True)
    fd, name = await asyncio.to_thread(tempfile.mkstemp, suffix=BUNDLE_SUFFIX, dir=incoming)
    path, size = Path(name), 0
    try:
        with os.fdopen(fd, "wb") as stream:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLargeError(max_bytes)
                await asyncio.to_thread(stream.write, chunk)
        if size == 0:
            raise BundleError("Aucun fichier reçu.")
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return path


def newest_version(session: Session) -> str | None:
    versions = list(session.scalars(select(Release.version)))
    return max(versions, key=version_key) if versions else None


def accept(
    sessions: sessionmaker[Session],
    received: Path,
    settings: Settings,
    *,
    actor: str,
    actor_user_id: int | None,
) -> Release:
    """Check the received bundle and keep it: its row, its file, its audit entry. On any
    refusal (BundleError, French) the received file is removed."""
    try:
        keyring = _keyring(settings)
        with sessions() as session:
            newest = newest_version(session)
        info = check_upload(received, keyring, newest)
        return _keep(sessions, received, info, settings.releases_dir, actor, actor_user_id)
    finally:
        received.unlink(missing_ok=True)


async def store(
    chunks: AsyncIterator[bytes],
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    actor: str,
    actor_user_id: int | None,
) -> Release:
    """Receive ``chunks`` and keep them as a release; UploadTooLargeError or BundleError (the
    refusal in French) else. Without a keyring nothing is received: nothing could be checked."""
    _keyring(settings)
    path = await receive(chunks, settings.releases_dir, settings.release_max_bytes)
    return await asyncio.to_thread(
        accept, sessions, path, settings, actor=actor, actor_user_id=actor_user_id
    )


def _keyring(settings: Settings) -> Path:
    """The update CA's file; BundleError when the server has none."""
    if settings.update_keyring is None:
        raise BundleError(
            "Aucune autorité de mise à jour n'est configurée sur le serveur"
            " (GUICHET_UPDATE_KEYRING) : paquet impossible à vérifier."
        )
    return settings.update_keyring


def _keep(
    sessions: sessionmaker[Session],
    received: Path,
    info: BundleInfo,
    directory: Path,
    actor: str,
    actor_user_id: int | None,
) -> Release:
    version = info.manifest.version
    target = directory / bundle_name(version, received.stem)
    try:
        with sessions.begin() as session:
            newest = newest_version(session)  # again: another upload may have won meanwhile
            if newest is not None and version_key(version) <= version_key(newest):
                raise BundleError(
                    f"La version {version} n'est pas plus récente que la dernière publiée"
                    f" ({newest})."
                )
            release = Release(
                version=version,
                compatible=info.manifest.compatible,
                description=(info.manifest.description or "")[:256] or None,
                size=info.size,
                sha256=info.sha256,
                signer=(info.signer or "")[:512] or None,
                adaptive=info.manifest.adaptive,
                path=str(target),
                uploaded_at=utcnow(),
                uploaded_by=actor,
            )
            session.add(release)
            audit.record(
                session, actor, "release.upload", version, actor_user_id=actor_user_id,
                sha256=info.sha256, size=info.size,
            )  # fmt: skip
            session.flush()
            os.replace(received, target)  # same filesystem: atomic; before the commit
            session.expunge(release)
    except IntegrityError:
        target.unlink(missing_ok=True)
        raise BundleError(f"La version {version} a déjà été déposée.") from None
    logger.info("release uploaded", extra={"release": version, "by": actor})
    return release


def all_releases(session: Session) -> list[Release]:
    """Every release, newest version first."""
    rows = list(session.scalars(select(Release)))
    return sorted(rows, key=lambda r: version_key(r.version), reverse=True)


def versions_in_use(session: Session) -> list[tuple[str | None, int]]:
    """How many counters (not withdrawn) run each version, most common first."""
    query = (
        select(Device.software_version, func.count())
        .where(Device.revoked_at.is_(None))
        .group_by(Device.software_version)
    )
    rows = [(version, int(count)) for version, count in session.execute(query)]
    return sorted(rows, key=lambda row: (-row[1], row[0] or ""))
