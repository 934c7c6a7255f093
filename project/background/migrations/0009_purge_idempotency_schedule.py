"""Every hour, the purge of expired API idempotency records (api.idempotency), through
`run_scheduled` like the other purges (0007)."""

from django.db import migrations

RUN_SCHEDULED = "project.background.schedules.run_scheduled"
ENQUEUE_PURGE = "project.tasks.enqueue_purge"
NAME = "purge-idempotency"


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=NAME,
        defaults={
            "func": RUN_SCHEDULED,
            "args": repr((NAME, ENQUEUE_PURGE, "idempotency")),
            "schedule_type": "I",  # every `minutes`
            "minutes": 60,
            "repeats": -1,
            "cluster": "critical",
        },
    )


def delete_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("background", "0008_purge_api_refresh_tokens_schedule")]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
