"""Personal-data exports move to the private storage (served only to their user, deleted
once expired). Exports written before this lie under the public MEDIA_ROOT: those files are
deleted and their rows marked expired (the user can request a new one)."""

from django.core.files.storage import default_storage
from django.db import migrations, models

import project.files


def retire_public_exports(apps, schema_editor):
    DataExport = apps.get_model("accounts", "DataExport")
    for export in DataExport.objects.exclude(file="").only("pk", "file"):
        default_storage.delete(export.file.name)
    DataExport.objects.exclude(file="").update(file="", status="expired")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_twofactor_devices_and_session_epoch")]

    operations = [
        migrations.AlterField(
            model_name="dataexport",
            name="file",
            field=models.FileField(
                blank=True, storage=project.files.private_storage, upload_to="exports/%Y/%m/"
            ),
        ),
        migrations.AlterField(
            model_name="dataexport",
            name="status",
            field=models.CharField(
                choices=[
                    ("queued", "Queued"),
                    ("running", "Running"),
                    ("ready", "Ready"),
                    ("failed", "Failed"),
                    ("expired", "Expired"),
                ],
                default="queued",
                max_length=8,
            ),
        ),
        migrations.RunPython(retire_public_exports, migrations.RunPython.noop),
    ]
