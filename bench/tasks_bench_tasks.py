"""Tasks for bench/tasks_bench.py (importable by the run_worker processes)."""

from django.tasks import task

from project import emails


@task(queue_name="critical")
def noop() -> None:
    return None


@task(queue_name="emails", takes_context=True)
def send_email(context) -> int:
    return emails.send_templated_email(
        to="bench@example.com",
        template="registration_attempt",
        subject="Someone tried to register with your email address",
        context={"name": "Bench", "login_url": "http://x/login", "reset_url": "http://x/reset"},
        idempotency_key=f"task:{context.task_result.id}",
    )
