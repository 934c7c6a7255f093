"""Real Django-Q2 clusters (`manage.py run_worker` processes) running the tasks backend."""

import json
import os
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlsplit

import pytest
from django.tasks import TaskResultStatus
from django.urls import reverse

from accounts import tasks as account_tasks
from accounts.models import User
from project.background.models import SentEmail
from tests.fixtures import mail
from tests.fixtures import tasks as fixture_tasks
from tests.fixtures.twofactor import sign_in_with_second_factor
from tests.fixtures.workers import q_workers  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("q_workers")


def finished(result) -> bool:
    result.refresh()
    return result.is_finished


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_receiver():
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver.received
    finally:
        server.shutdown()
        server.server_close()


def test_failing_twice_then_succeeding_ends_succeeded_with_three_attempts(q_workers):  # noqa: F811
    q_workers.start("critical")
    key = f"flaky-{os.getpid()}-{id(q_workers)}"

    result = fixture_tasks.flaky.enqueue(key, failures=2)

    q_workers.wait_for(lambda: finished(result), timeout=30)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.attempts == 3
    assert result.return_value == 3
    assert len(result.errors) == 2
    assert len(set(result.worker_ids)) >= 1


def test_always_failing_task_fails_after_three_attempts_and_is_announced_once(
    q_workers,  # noqa: F811
    webhook_receiver,
    client,
    staff,
):
    url, received = webhook_receiver
    q_workers.start("critical", TASK_FAILURE_WEBHOOK_URL=url)

    result = fixture_tasks.always_fails.enqueue(order_id=99)

    q_workers.wait_for(lambda: finished(result), timeout=30)
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 3
    assert [error.exception_class_path for error in result.errors] == ["builtins.RuntimeError"] * 3
    q_workers.wait_for(lambda: received, timeout=10)
    assert received == [
        {
            "event": "task_failed",
            "task": "tests.fixtures.tasks.always_fails",
            "id": result.id,
            "queue": "critical",
            "args": "order_id=99",
            "error": "RuntimeError: the processor is on fire",
            "attempts": 3,
            "request_id": "",
        }
    ]
    sign_in_with_second_factor(client, staff)
    page = client.get(
        reverse("admin:background_taskrecord_changelist"), {"status__exact": "FAILED"}
    )
    assert result.id in page.content.decode()
    metrics = client.get("/metrics").content.decode()
    assert (
        'bazaar_task_failures_total{queue="critical",task="tests.fixtures.tasks.always_fails"} 1.0'
        in metrics
    )


def test_two_hundred_emails_all_arrive_once_with_working_links(q_workers, client):  # noqa: F811
    users = User.objects.bulk_create(
        User(email=f"reader{n}@example.com", full_name=f"Reader {n}") for n in range(200)
    )
    q_workers.start("emails")

    results = [account_tasks.send_verification_email.enqueue(user_id=user.pk) for user in users]

    q_workers.wait_for(lambda: len(q_workers.emails()) >= 200, timeout=120, interval=0.5)
    q_workers.wait_for(lambda: all(finished(result) for result in results), timeout=30)
    assert {result.status for result in results} == {TaskResultStatus.SUCCESSFUL}
    messages = q_workers.emails()
    assert sorted(message["To"] for message in messages) == sorted(user.email for user in users)
    assert {message["Subject"] for message in messages} == {"Verify your email address"}
    assert SentEmail.objects.filter(status="sent", template="verify_email").count() == 200
    # The link in an email verifies that email's account.
    message = next(m for m in messages if m["To"] == "reader7@example.com")
    body = mail.text_body(message)
    assert "Please confirm that this is your email address" in body
    link = re.search(r"https?://\S+/accounts/verify/\S+/", body).group(0)
    client.get(urlsplit(link).path)
    assert User.objects.get(email="reader7@example.com").is_verified


def test_a_transient_smtp_failure_is_retried_and_the_email_sent_once(q_workers):  # noqa: F811
    # The spool backend fails the first send to a "+flaky" address (counted in Redis).
    address = f"sam+flaky-{uuid.uuid4().hex[:8]}@example.com"
    user = User.objects.create(email=address, full_name="Sam")
    q_workers.start("emails")

    result = account_tasks.send_registration_attempt_email.enqueue(user_id=user.pk)

    q_workers.wait_for(lambda: finished(result), timeout=30)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.attempts == 2
    assert result.errors[0].exception_class_path == "smtplib.SMTPServerDisconnected"
    [message] = q_workers.emails()
    assert message["To"] == address
    assert message["Subject"] == "Someone tried to register with your email address"
    assert "/accounts/password/reset/" in mail.text_body(message)


def test_a_retry_after_sending_does_not_send_again(q_workers):  # noqa: F811
    q_workers.start("emails")
    key = f"after-send-{os.getpid()}-{id(q_workers)}"

    result = fixture_tasks.email_then_fail_once.enqueue("once@example.com", key)

    q_workers.wait_for(lambda: finished(result), timeout=30)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.attempts == 2
    assert len(q_workers.emails()) == 1
    [sent] = SentEmail.objects.all()
    assert (sent.status, sent.attempts, sent.to) == ("sent", 1, "once@example.com")


def test_registering_emails_a_verification_link_from_a_worker(q_workers, client):  # noqa: F811
    q_workers.start("emails")

    response = client.post(
        reverse("accounts:register"),
        {
            "email": "newcomer@example.com",
            "full_name": "New Comer",
            "password1": "a-long-and-unusual-passphrase",
            "password2": "a-long-and-unusual-passphrase",
        },
    )

    assert response.status_code == 302
    [message] = q_workers.wait_for(q_workers.emails, timeout=30)
    assert message["To"] == "newcomer@example.com"
    assert message["Subject"] == "Verify your email address"
    link = re.search(r"https?://\S+/accounts/verify/\S+/", mail.text_body(message)).group(0)
    assert link.startswith("http://testserver/accounts/verify/")
    client.get(urlsplit(link).path)
    assert User.objects.get(email="newcomer@example.com").is_verified
