"""Every hour, the `api-refresh-tokens` purge of project.housekeeping (expired refresh-token
rows of the API, api.services.sessions), through `run_scheduled` like every other purge."""

from django.db import migrations

RUN_SCHEDULED = "project.background.schedules.run_scheduled"
ENQUEUE_PURGE = "project.tasks.enqueue_purge"
NAME = "purge-api-refresh-tokens"


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name=NAME,
        defaults={
            "func": RUN_SCHEDULED,
            "args": repr((NAME, ENQUEUE_PURGE, "api-refresh-tokens")),
            "schedule_type": "I",  # every `minutes`
            "minutes": 60,
            "repeats": -1,
            "cluster": "critical",
        },
    )


def delete_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("background", "0007_purge_schedules")]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
