"""Private files: sales reports and personal-data exports.

They live in the "private" storage (settings.STORAGES["private"], PRIVATE_FILES_ROOT), never
under MEDIA_ROOT, so no web server or media view can hand them out. Their names are random;
they have no URL of their own: a view that checks who is asking streams them as an
attachment, until they expire, and a scheduled task deletes them then.
"""

import secrets
from typing import cast

from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.signals import setting_changed
from django.db.models.fields.files import FieldFile
from django.dispatch import receiver
from django.http import FileResponse, Http404
from django.utils.functional import LazyObject, empty


class PrivateFileSystemStorage(FileSystemStorage):
    """A file system storage whose files have no URL."""

    def url(self, name: str | None) -> str:
        raise ValueError("Private files have no URL; a view that checks permission serves them.")


class _PrivateStorage(LazyObject):
    _wrapped: object  # the storage, or `empty` until first used

    def _setup(self) -> None:
        self._wrapped = storages["private"]


private = _PrivateStorage()


def private_storage() -> Storage:
    """The "private" storage, for FileField(storage=...): a callable, so migrations name it
    rather than its location, and lazy, so a changed STORAGES setting (tests) takes effect."""
    return cast(Storage, private)  # the lazy proxy stands for the storage


@receiver(setting_changed)
def _storages_changed(*, setting: str, **kwargs) -> None:
    if setting == "STORAGES":
        private._wrapped = empty


def unguessable_name(suffix: str) -> str:
    """A random file name (192 bits) ending in `suffix`, e.g. ".csv"."""
    return f"{secrets.token_urlsafe(24)}{suffix}"


def attachment(file: File, *, filename: str, content_type: str) -> FileResponse:
    """Stream a private file as a download that no cache keeps and no browser sniffs; 404 if
    the file is gone from the storage."""
    try:
        handle = file.open("rb")
    except (FileNotFoundError, ValueError) as exc:
        raise Http404("No such file.") from exc
    response = FileResponse(
        handle, as_attachment=True, filename=filename, content_type=content_type
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def delete_file(file: FieldFile) -> None:
    """Delete a FileField's file from its storage (nothing happens if it is already gone)."""
    if file.name:
        file.storage.delete(file.name)
