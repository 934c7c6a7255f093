"""Media storages (product images, private reports and exports) in and out of a backup, one
uncompressed tar per storage (the images are compressed already), through Django's storage
API so an object store works as well as a folder."""

import posixpath
import tarfile
from collections.abc import Iterator
from pathlib import Path

from django.core.files import File
from django.core.files.storage import Storage

from project.backups.errors import BackupError


class UnsafeArchive(BackupError):
    """A tar member that would land outside its storage."""


def walk(storage: Storage, folder: str = "") -> Iterator[str]:
    """Every file name in `storage`, depth first, in a stable order."""
    try:
        folders, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in sorted(files):
        yield posixpath.join(folder, name) if folder else name
    for sub in sorted(folders):
        yield from walk(storage, posixpath.join(folder, sub) if folder else sub)


def archive(storage: Storage, *, path: Path) -> int:
    """Write every file of `storage` into the tar at `path`; returns how many."""
    count = 0
    with tarfile.open(path, "w") as tar:
        for name in walk(storage):
            info = tarfile.TarInfo(name)
            info.size = storage.size(name)
            info.mode = 0o640
            with storage.open(name, "rb") as source:
                tar.addfile(info, source)
            count += 1
    return count


def unpack(storage: Storage, *, path: Path) -> int:
    """Save every file of the tar at `path` into `storage` under its own name (an existing
    file of that name is replaced); returns how many."""
    count = 0
    with tarfile.open(path, "r") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = posixpath.normpath(member.name)
            if name.startswith(("/", "..")) or name != member.name:
                raise UnsafeArchive(f"Refusing the archive member {member.name!r}.")
            source = tar.extractfile(member)
            if storage.exists(name):
                storage.delete(name)
            saved = storage.save(name, File(source, name=posixpath.basename(name)))
            if saved != name:
                raise UnsafeArchive(f"The storage renamed {name!r} to {saved!r}.")
            count += 1
    return count
