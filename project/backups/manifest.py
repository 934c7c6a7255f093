"""`manifest.json`: what a backup holds and how to know it is intact.

Written last, so a folder without one is an unfinished backup that nothing restores or counts.
"""

import hashlib
import json
from pathlib import Path
from typing import IO, Any

from django.core.files.storage import FileSystemStorage, Storage

from project.backups.errors import BackupError

NAME = "manifest.json"
FORMAT = 1
CHUNK = 1024 * 1024


class CorruptBackup(BackupError):
    """A file is missing, or its size or SHA-256 differs from the manifest's."""


def file_entry(path: Path) -> dict[str, Any]:
    """The manifest's record of one file: its name, size and SHA-256."""
    with path.open("rb") as stream:
        sha256, size = _digest(stream)
    return {"name": path.name, "size": size, "sha256": sha256}


def load(storage: Storage, backup: str) -> dict[str, Any]:
    name = f"{backup}/{NAME}"
    if not storage.exists(name):
        raise CorruptBackup(
            f"{backup}: no {NAME} (not a backup, or one that did not finish); nothing changed."
        )
    with storage.open(name, "rb") as stream:
        manifest = json.load(stream)
    if manifest.get("format") != FORMAT:
        raise CorruptBackup(f"{backup}: unknown manifest format {manifest.get('format')!r}.")
    return manifest


def verify_files(
    storage: Storage, backup: str, manifest: dict, *, work_dir: Path
) -> dict[str, Path]:
    """Check every file the manifest lists against its size and SHA-256 and return
    {name: local path}: the file itself in a folder storage, else a copy
    downloaded into `work_dir` while it is hashed."""
    local: dict[str, Path] = {}
    for entry in manifest["files"]:
        name = f"{backup}/{entry['name']}"
        if not storage.exists(name):
            raise CorruptBackup(f"{name} is missing; nothing changed.")
        if isinstance(storage, FileSystemStorage):
            path = Path(storage.path(name))
            with path.open("rb") as stream:
                sha256, size = _digest(stream)
        else:
            path = work_dir / entry["name"]
            with storage.open(name, "rb") as stream, path.open("wb") as copy:
                sha256, size = _digest(stream, copy_to=copy)
        if (size, sha256) != (entry["size"], entry["sha256"]):
            raise CorruptBackup(
                f"{name} does not match the manifest (size {size}, SHA-256 {sha256}; "
                f"expected size {entry['size']}, SHA-256 {entry['sha256']}): the backup is "
                "damaged; nothing changed."
            )
        local[entry["name"]] = path
    return local


def _digest(stream: IO[bytes], *, copy_to: IO[bytes] | None = None) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if copy_to is not None:
            copy_to.write(chunk)
    return digest.hexdigest(), size
