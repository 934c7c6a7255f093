"""The webhooks' schedules, through `run_scheduled` like every other: every minute, enqueue
deliveries whose attempt is overdue (webhooks.tasks.requeue_stalled_deliveries); every hour,
the purge of old deliveries (project.housekeeping, "webhooks")."""

from django.db import migrations

RUN_SCHEDULED = "project.background.schedules.run_scheduled"
SCHEDULES = {
    "webhooks-requeue-stalled": (1, ("webhooks.tasks.requeue_stalled_deliveries",)),
    "purge-webhooks": (60, ("project.tasks.enqueue_purge", "webhooks")),
}


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, (minutes, args) in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": RUN_SCHEDULED,
                "args": repr((name, *args)),
                "schedule_type": "I",  # every `minutes`
                "minutes": minutes,
                "repeats": -1,
                "cluster": "critical",
            },
        )


def delete_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name__in=list(SCHEDULES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0002_row_level_security"),
        ("background", "0007_purge_schedules"),
    ]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
