"""Killing an email worker mid-send: the send-once guard never sends one key twice.

Real worker clusters (run_worker) send through Django's SMTP backend to a real SMTP server
in the test (tests.fixtures.smtp_server), which holds one conversation at a chosen point
while the test SIGKILLs the worker running it. The guard's commit point is the SentEmail row marked
"sending", committed just before the SMTP conversation: a worker killed before that commit
is retried and sends; a worker killed after it is never followed by a second send, whether
or not its message reached the server.
"""

import os
import signal

import psycopg
import pytest
from django.tasks import TaskResultStatus
from django.urls import reverse

from accounts import tasks as account_tasks
from accounts.models import User
from project.background.models import SentEmail, TaskRecord
from tests.fixtures.smtp_server import smtp_server  # noqa: F401 - the fixture
from tests.fixtures.workers import database_url, q_workers  # noqa: F401 - the fixture

SMTP_WORKER_SETTINGS = "tests.fixtures.smtp_worker_settings"
WORKER_LOST = "project.background.runner.WorkerLost"


@pytest.fixture
def smtp_workers(q_workers, smtp_server, monkeypatch):  # noqa: F811
    """`q_workers` whose clusters mail through `smtp_server`.

    Workers.env() sets DJANGO_SETTINGS_MODULE after the variables given to start(), so
    start() cannot choose the settings module; until it can, env() is wrapped here.
    """
    worker_env = q_workers.env
    monkeypatch.setattr(
        q_workers,
        "env",
        lambda queue: {**worker_env(queue), "DJANGO_SETTINGS_MODULE": SMTP_WORKER_SETTINGS},
    )
    q_workers.extra_env.update(EMAIL_HOST=smtp_server.host, EMAIL_PORT=str(smtp_server.port))
    return q_workers


def finished(result) -> bool:
    result.refresh()
    return result.is_finished


def kill_worker_running(result, cluster) -> None:
    """SIGKILL the worker process that runs the task's current attempt, and only it."""
    record = TaskRecord.objects.get(pk=result.id)
    assert record.status == TaskResultStatus.RUNNING
    victim = int(record.worker_ids[-1].rsplit(":", 1)[1])
    assert victim in cluster.descendants()
    os.kill(victim, signal.SIGKILL)


def email_user(email: str):
    user = User.objects.create(email=email, full_name=email.split("@")[0].title())
    return account_tasks.send_registration_attempt_email.enqueue(user_id=user.pk)


def waiting_for_the_sentemail_table() -> bool:
    with psycopg.connect(database_url(), autocommit=True) as observer:
        [(waiting,)] = observer.execute(
            "SELECT count(*) FROM pg_locks JOIN pg_class ON pg_class.oid = pg_locks.relation"
            " WHERE pg_class.relname = 'background_sentemail' AND NOT pg_locks.granted"
        ).fetchall()
    return waiting > 0


def assert_a_later_email_is_delivered_once(workers, server) -> None:
    """The cluster that lost a worker still sends: a new email arrives once within 10 s."""
    before = len(server.messages)

    later = email_user("later@example.com")

    workers.wait_for(lambda: len(server.messages) > before, timeout=10)
    workers.wait_for(lambda: finished(later), timeout=10)
    assert later.status == TaskResultStatus.SUCCESSFUL
    assert [message["To"] for message in server.messages[before:]] == ["later@example.com"]
    sent = SentEmail.objects.get(to="later@example.com")
    assert (sent.status, sent.attempts) == (SentEmail.Status.SENT, 1)


def test_a_worker_killed_while_the_server_holds_the_data_reply_never_sends_again(
    smtp_workers,
    smtp_server,  # noqa: F811
    client,
    staff,
):
    [cluster] = smtp_workers.start("emails").values()
    smtp_server.hold_next("DATA")

    result = email_user("ada@example.com")
    smtp_workers.wait_for(lambda: smtp_server.holding("DATA"), timeout=20)
    kill_worker_running(result, cluster)

    # The attempt's lease runs out, the broker hands the task out again, and the retry finds
    # the key "sending": it may have been delivered, so it is not sent again.
    smtp_workers.wait_for(lambda: finished(result), timeout=60)
    # The server kept the one copy it had when the worker died, and got no other.
    [message] = smtp_server.messages
    assert message["To"] == "ada@example.com"
    sent = SentEmail.objects.get(to="ada@example.com")
    assert message["Message-ID"] == sent.message_id
    assert (sent.status, sent.attempts, sent.sent_at) == (SentEmail.Status.SENDING, 1, None)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.attempts == 2
    assert [error.exception_class_path for error in result.errors] == [WORKER_LOST]
    assert_a_later_email_is_delivered_once(smtp_workers, smtp_server)
    assert len([m for m in smtp_server.messages if m["To"] == "ada@example.com"]) == 1
    # Staff see the email whose outcome is unknown.
    client.force_login(staff)
    page = client.get(
        reverse("admin:background_sentemail_changelist"), {"status__exact": "sending"}
    )
    assert page.status_code == 200
    content = page.content.decode()
    assert '<td class="field-status">Sending</td>' in content
    assert "ada@example.com" in content
    assert "later@example.com" not in content


def test_a_worker_killed_before_the_conversation_but_after_its_claim_never_sends(
    smtp_workers,
    smtp_server,  # noqa: F811
):
    [cluster] = smtp_workers.start("emails").values()
    smtp_server.hold_next("EHLO")

    result = email_user("ada@example.com")
    smtp_workers.wait_for(lambda: smtp_server.holding("EHLO"), timeout=20)
    # The claim committed before the connection was opened.
    claimed = SentEmail.objects.get(to="ada@example.com")
    assert (claimed.status, claimed.attempts) == (SentEmail.Status.SENDING, 1)
    kill_worker_running(result, cluster)

    smtp_workers.wait_for(lambda: finished(result), timeout=60)
    # Nothing reached the server, yet the retry cannot tell that from a death after the
    # final dot: the guard chose never to send twice, so this email is never sent.
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.attempts == 2
    assert [error.exception_class_path for error in result.errors] == [WORKER_LOST]
    assert smtp_server.messages == []
    sent = SentEmail.objects.get(to="ada@example.com")
    assert (sent.status, sent.attempts, sent.sent_at) == (SentEmail.Status.SENDING, 1, None)
    assert_a_later_email_is_delivered_once(smtp_workers, smtp_server)
    assert [message["To"] for message in smtp_server.messages] == ["later@example.com"]


def test_a_worker_killed_before_its_claim_commits_is_retried_and_sends_once(
    smtp_workers,
    smtp_server,  # noqa: F811
):
    [cluster] = smtp_workers.start("emails").values()
    # Another connection holds the SentEmail table, so the worker stops inside claim(),
    # before its "sending" row can commit (plain reads still pass).
    with psycopg.connect(database_url()) as blocker:
        blocker.execute("LOCK TABLE background_sentemail IN EXCLUSIVE MODE")

        result = email_user("ada@example.com")
        smtp_workers.wait_for(
            lambda: (
                TaskRecord.objects.filter(pk=result.id, status=TaskResultStatus.RUNNING).exists()
                and waiting_for_the_sentemail_table()
            ),
            timeout=20,
        )
        kill_worker_running(result, cluster)
        blocker.rollback()

    smtp_workers.wait_for(lambda: finished(result), timeout=60)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.attempts == 2
    assert [error.exception_class_path for error in result.errors] == [WORKER_LOST]
    [message] = smtp_server.messages
    assert message["To"] == "ada@example.com"
    sent = SentEmail.objects.get(to="ada@example.com")
    # The killed attempt left no claim: the retry's was the first and only one.
    assert (sent.status, sent.attempts) == (SentEmail.Status.SENT, 1)
    assert message["Message-ID"] == sent.message_id
    assert_a_later_email_is_delivered_once(smtp_workers, smtp_server)
