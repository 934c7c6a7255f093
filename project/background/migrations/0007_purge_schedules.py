"""Every hour, each purge of project.housekeeping, through `run_scheduled` (which only
enqueues the `project.tasks.purge` task). The report and export purges move onto the same
task, which writes a log line per run; their old tasks stay importable for tasks already
enqueued during a rollout."""

from django.db import migrations

RUN_SCHEDULED = "project.background.schedules.run_scheduled"
ENQUEUE_PURGE = "project.tasks.enqueue_purge"
HOURLY = ["outbox", "tasks", "emails", "heartbeats", "carts", "sessions"]
# Existing schedules (0005): name -> (purge, the function they called until now).
MOVED = {
    "purge-expired-reports": ("reports", "shop.tasks.reports.enqueue_report_purge"),
    "purge-expired-exports": ("exports", "accounts.tasks.enqueue_export_purge"),
}


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for purge in HOURLY:
        name = f"purge-{purge}"
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": RUN_SCHEDULED,
                "args": repr((name, ENQUEUE_PURGE, purge)),
                "schedule_type": "I",  # every `minutes`
                "minutes": 60,
                "repeats": -1,
                "cluster": "critical",
            },
        )
    for name, (purge, _old) in MOVED.items():
        Schedule.objects.filter(name=name).update(args=repr((name, ENQUEUE_PURGE, purge)))


def delete_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name__in=[f"purge-{purge}" for purge in HOURLY]).delete()
    for name, (_purge, old) in MOVED.items():
        Schedule.objects.filter(name=name).update(args=repr((name, old)))


class Migration(migrations.Migration):
    dependencies = [("background", "0006_heartbeat")]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
