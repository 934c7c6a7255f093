"""The periodic schedules go through `run_scheduled`, which runs each once per interval even
when Django-Q2 delivers the schedule's row again."""

from django.db import migrations

SCHEDULES = {
    "sweep-stuck-payments": "shop.tasks.payments.enqueue_payment_sweep",
    "check-queue-depths": "project.background.monitoring.check_queue_depths",
}


def guard_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func in SCHEDULES.items():
        Schedule.objects.filter(name=name).update(
            func="project.background.schedules.run_scheduled", args=repr((name, func))
        )


def unguard_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func in SCHEDULES.items():
        Schedule.objects.filter(name=name).update(func=func, args=None)


class Migration(migrations.Migration):
    dependencies = [("background", "0002_periodic_schedules")]
    operations = [migrations.RunPython(guard_schedules, unguard_schedules)]
