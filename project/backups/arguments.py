"""The options the backup commands share: where the backups are."""

from argparse import ArgumentParser

from django.core.files.storage import Storage
from django.core.management.base import CommandError

from project.backups import services


def add_location_arguments(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--storage", default="", help="A STORAGES alias (default: BACKUP_STORAGE, 'backups')."
    )
    parser.add_argument("--dir", default="", help="A folder instead of a storage.")


def location(options: dict) -> Storage:
    try:
        return services.backup_storage(alias=options["storage"], folder=options["dir"])
    except services.BackupError as error:
        raise CommandError(str(error)) from None
