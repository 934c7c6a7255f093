"""An email whose delivery is unknown is never sent twice, and never lost silently.

Real worker clusters (run_worker) send through Bazaar's SMTP backend to a real SMTP server in
the test (tests.fixtures.smtp_server), which holds one conversation at a chosen point (while
the test SIGKILLs the worker running it, or until the client times out), or refuses one
message. The guard's commit point is the SentEmail row marked "sending", committed just
before the SMTP conversation:

- a worker killed before that commit is retried and sends;
- a refusal (an error reply, or a failure before the message data went out) marks the row
  "failed": the retry sends it, once;
- an unknown outcome (no reply after the message data, or a worker killed after the commit)
  leaves "sending": never sent again by itself, and the task fails visibly
  (EmailOutcomeUnknown) until staff allow sending again, or mark it delivered, and retry it.
"""

import html
import os
import signal
import smtplib

import psycopg
import pytest
from django.core.mail import EmailMessage
from django.tasks import TaskResultStatus
from django.urls import reverse

from accounts import tasks as account_tasks
from accounts.models import User
from project.background import smtp
from project.background.models import SentEmail, TaskRecord
from tests.fixtures.smtp_server import smtp_server  # noqa: F401 - the fixture
from tests.fixtures.twofactor import sign_in_with_second_factor
from tests.fixtures.workers import database_url, q_workers  # noqa: F401 - the fixture

WORKER_LOST = "project.background.runner.WorkerLost"
OUTCOME_UNKNOWN = "project.background.emails.EmailOutcomeUnknown"


@pytest.fixture
def smtp_workers(q_workers, smtp_server):  # noqa: F811
    """`q_workers` whose clusters mail through `smtp_server`."""
    q_workers.extra_env.update(
        DJANGO_SETTINGS_MODULE="tests.fixtures.smtp_worker_settings",
        EMAIL_HOST=smtp_server.host,
        EMAIL_PORT=str(smtp_server.port),
    )
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
            # pg_locks lists every database's locks: this test database's only.
            " AND pg_locks.database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
    return waiting > 0


def copies_to(server, address: str) -> list:
    return [message for message in server.messages if message["To"] == address]


def assert_a_later_email_is_delivered_once(workers, server) -> None:
    """The cluster still sends: a new email arrives once within 10 s."""
    before = len(server.messages)

    later = email_user("later@example.com")

    workers.wait_for(lambda: len(server.messages) > before, timeout=10)
    workers.wait_for(lambda: finished(later), timeout=10)
    assert later.status == TaskResultStatus.SUCCESSFUL
    assert [message["To"] for message in server.messages[before:]] == ["later@example.com"]
    sent = SentEmail.objects.get(to="later@example.com")
    assert (sent.status, sent.attempts) == (SentEmail.Status.SENT, 1)


def failed_tasks_page(client) -> str:
    page = client.get(
        reverse("admin:background_taskrecord_changelist"), {"status__exact": "FAILED"}
    )
    assert page.status_code == 200
    return page.content.decode()


def decide_as_staff(client, action: str, email: SentEmail) -> str:
    """Choose an admin action on one SentEmail row; returns the confirmation page."""
    url = reverse("admin:background_sentemail_changelist")
    confirmation = client.post(url, {"action": action, "_selected_action": [email.pk]})
    assert confirmation.status_code == 200
    done = client.post(url, {"action": action, "_selected_action": [email.pk], "confirm": "yes"})
    assert done.status_code == 302
    return confirmation.content.decode()


def retry_now_as_staff(client, result) -> None:
    response = client.post(
        reverse("admin:background_taskrecord_changelist"),
        {"action": "retry_now", "_selected_action": [result.id]},
    )
    assert response.status_code == 302


def test_no_answer_after_the_message_data_leaves_it_unsent_again_and_fails_the_task(
    smtp_workers,
    smtp_server,  # noqa: F811
    client,
    staff,
):
    # The worker waits 2 s for a reply; the server keeps the message but never answers.
    smtp_workers.start("emails", EMAIL_TIMEOUT="2")
    smtp_server.hold_next("DATA")

    result = email_user("ada@example.com")

    smtp_workers.wait_for(lambda: finished(result), timeout=30)
    # The server may have accepted it: not retried, and the task failed at once.
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 1
    [error] = result.errors
    assert error.exception_class_path == OUTCOME_UNKNOWN
    assert "got no answer after its message data" in error.traceback
    [message] = smtp_server.messages
    sent = SentEmail.objects.get(to="ada@example.com")
    assert message["Message-ID"] == sent.message_id
    assert (sent.status, sent.attempts, sent.sent_at) == (SentEmail.Status.SENDING, 1, None)
    assert_a_later_email_is_delivered_once(smtp_workers, smtp_server)
    assert len(copies_to(smtp_server, "ada@example.com")) == 1
    # Staff see the failed task and why.
    sign_in_with_second_factor(client, staff)
    content = failed_tasks_page(client)
    assert "accounts.tasks.send_registration_attempt_email" in content
    assert "EmailOutcomeUnknown: Email registration_attempt" in content


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
    # the key "sending": it may have been delivered, so it is not sent again, and the task
    # fails for staff to see.
    smtp_workers.wait_for(lambda: finished(result), timeout=60)
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 2
    assert [error.exception_class_path for error in result.errors] == [
        WORKER_LOST,
        OUTCOME_UNKNOWN,
    ]
    # The server kept the one copy it had when the worker died, and got no other.
    [message] = smtp_server.messages
    assert message["To"] == "ada@example.com"
    sent = SentEmail.objects.get(to="ada@example.com")
    assert message["Message-ID"] == sent.message_id
    assert (sent.status, sent.attempts, sent.sent_at) == (SentEmail.Status.SENDING, 1, None)
    assert_a_later_email_is_delivered_once(smtp_workers, smtp_server)
    sign_in_with_second_factor(client, staff)
    assert "EmailOutcomeUnknown: Email registration_attempt" in failed_tasks_page(client)
    page = client.get(
        reverse("admin:background_sentemail_changelist"), {"status__exact": "sending"}
    )
    content = page.content.decode()
    assert '<td class="field-status">Sending</td>' in content
    assert "ada@example.com" in content
    assert "later@example.com" not in content

    # Staff find the message at the mail server and mark it delivered: a retry of the task
    # completes without sending it again.
    confirmation = decide_as_staff(client, "mark_delivered", sent)
    assert "never sent again" in confirmation
    assert html.escape(sent.message_id) in confirmation
    sent.refresh_from_db()
    assert (sent.status, sent.sent_at) == (SentEmail.Status.SENT, None)
    retry_now_as_staff(client, result)

    smtp_workers.wait_for(lambda: finished(result), timeout=20)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.attempts == 3
    assert len(copies_to(smtp_server, "ada@example.com")) == 1


def test_a_worker_killed_at_ehlo_fails_its_task_and_staff_can_have_it_sent_once(
    smtp_workers,
    smtp_server,  # noqa: F811
    client,
    staff,
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
    # final dot: it does not send, and the task fails for staff to see.
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 2
    assert [error.exception_class_path for error in result.errors] == [
        WORKER_LOST,
        OUTCOME_UNKNOWN,
    ]
    assert smtp_server.messages == []
    sent = SentEmail.objects.get(to="ada@example.com")
    assert (sent.status, sent.attempts, sent.sent_at) == (SentEmail.Status.SENDING, 1, None)
    sign_in_with_second_factor(client, staff)
    assert "EmailOutcomeUnknown: Email registration_attempt" in failed_tasks_page(client)

    # Staff allow it to be sent again (told it may arrive twice), then retry the task.
    confirmation = decide_as_staff(client, "allow_sending_again", sent)
    assert "same Message-ID" in confirmation
    assert "gets a second one" in confirmation
    sent.refresh_from_db()
    assert sent.status == SentEmail.Status.FAILED
    retry_now_as_staff(client, result)

    smtp_workers.wait_for(lambda: finished(result), timeout=20)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.attempts == 3
    [message] = smtp_server.messages
    assert message["To"] == "ada@example.com"
    sent.refresh_from_db()
    assert message["Message-ID"] == sent.message_id
    assert (sent.status, sent.attempts) == (SentEmail.Status.SENT, 2)
    assert_a_later_email_is_delivered_once(smtp_workers, smtp_server)
    assert len(copies_to(smtp_server, "ada@example.com")) == 1


def test_an_email_the_server_refuses_is_retried_and_sent_once(
    smtp_workers,
    smtp_server,  # noqa: F811
):
    smtp_workers.start("emails")
    smtp_server.refuse_next("554 5.7.1 Refused by the test")

    result = email_user("ada@example.com")

    smtp_workers.wait_for(lambda: finished(result), timeout=30)
    # The refusal was an answer: nothing was accepted, so the retry sent it.
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.attempts == 2
    assert [error.exception_class_path for error in result.errors] == ["smtplib.SMTPDataError"]
    assert smtp_server.refused == 1
    [message] = smtp_server.messages
    assert message["To"] == "ada@example.com"
    sent = SentEmail.objects.get(to="ada@example.com")
    assert message["Message-ID"] == sent.message_id
    assert (sent.status, sent.attempts) == (SentEmail.Status.SENT, 2)


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


def test_the_smtp_backend_tells_a_refused_message_from_one_whose_outcome_is_unknown(
    smtp_server,  # noqa: F811
    settings,
):
    settings.MAILERS = {
        "default": {
            "BACKEND": "project.background.smtp.EmailBackend",
            "OPTIONS": {"host": smtp_server.host, "port": smtp_server.port, "timeout": 1},
        }
    }

    def send() -> int:
        return EmailMessage("Hello", "Hello Ada", to=["ada@example.com"]).send()

    # No answer before the message data went out: surely not accepted, smtplib's own error.
    smtp_server.hold_next("EHLO")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        send()
    # An explicit error reply to the message: not accepted either.
    smtp_server.refuse_next("451 4.3.0 Try again later")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send()
    assert refused.value.smtp_code == 451
    # No answer after the message data: the server may have it.
    smtp_server.hold_next("DATA")
    with pytest.raises(smtp.DeliveryUnknown):
        send()
    assert send() == 1
    assert len(smtp_server.messages) == 2
