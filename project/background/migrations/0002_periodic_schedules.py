"""Periodic work, run by Django-Q2's scheduler inside the `critical` cluster.

Q2's scheduler only hands the schedule's function to a worker; each function just enqueues
(or checks), so the real work still goes through the Tasks API with its retries.
"""

from django.db import migrations

SCHEDULES = [
    {
        "name": "sweep-stuck-payments",
        "func": "shop.tasks.payments.enqueue_payment_sweep",
    },
    {
        "name": "check-queue-depths",
        "func": "project.background.monitoring.check_queue_depths",
    },
]


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for spec in SCHEDULES:
        Schedule.objects.update_or_create(
            name=spec["name"],
            defaults={
                "func": spec["func"],
                "schedule_type": "I",  # every `minutes`
                "minutes": 1,
                "repeats": -1,
                "cluster": "critical",
            },
        )


def delete_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name__in=[spec["name"] for spec in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("background", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
