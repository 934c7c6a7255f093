"""Every 15 minutes: delete the private files (sales reports, personal-data exports) whose
time is up. Like the other schedules, each goes through `run_scheduled` and only enqueues."""

from django.db import migrations

SCHEDULES = {
    "purge-expired-reports": "shop.tasks.reports.enqueue_report_purge",
    "purge-expired-exports": "accounts.tasks.enqueue_export_purge",
}


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": "project.background.schedules.run_scheduled",
                "args": repr((name, func)),
                "schedule_type": "I",  # every `minutes`
                "minutes": 15,
                "repeats": -1,
                "cluster": "critical",
            },
        )


def delete_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name__in=SCHEDULES).delete()


class Migration(migrations.Migration):
    dependencies = [("background", "0004_taskrecord_last_attempt_index")]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
