"""Sales reports move to the private storage (random names, served only through views that
check permission, deleted once expired). Reports written before this lie under the public
MEDIA_ROOT with guessable names: those files are deleted and their rows marked expired
(request them again)."""

from django.core.files.storage import default_storage
from django.db import migrations, models

import project.files


def retire_public_reports(apps, schema_editor):
    ReportJob = apps.get_model("shop", "ReportJob")
    for report in ReportJob.objects.exclude(file="").only("pk", "file"):
        default_storage.delete(report.file.name)
    ReportJob.objects.exclude(file="").update(file="", status="expired")


class Migration(migrations.Migration):
    dependencies = [("shop", "0003_payment_attempts_outcome_unknown")]

    operations = [
        migrations.AddField(
            model_name="reportjob",
            name="expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="reportjob",
            name="file",
            field=models.FileField(
                blank=True, storage=project.files.private_storage, upload_to="reports/%Y/%m/"
            ),
        ),
        migrations.AlterField(
            model_name="reportjob",
            name="status",
            field=models.CharField(
                choices=[
                    ("queued", "Queued"),
                    ("running", "Running"),
                    ("done", "Ready"),
                    ("failed", "Failed"),
                    ("expired", "Expired"),
                ],
                db_index=True,
                default="queued",
                max_length=8,
            ),
        ),
        migrations.RunPython(retire_public_reports, migrations.RunPython.noop),
    ]
