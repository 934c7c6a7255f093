"""Tasks never carry secrets: a password-reset link's token is made by the email task, so no
task record (stored, and shown to staff in the admin) nor broker row holds one."""

import json
import re

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_q.models import OrmQ

from project.background import runner
from project.background.models import TaskRecord

Q2 = {
    "default": {
        "BACKEND": "project.background.backend.DjangoQ2Backend",
        "QUEUES": ["default", "critical", "emails", "analytics"],
    }
}
NEW_PASSWORD = "lantern-quarry-meadow-77"


def _stored_strings(record: TaskRecord) -> list[str]:
    """Every string in what the record and its broker row keep."""
    text = json.dumps([record.args, record.kwargs, record.return_value])
    strings = re.findall(r'"([^"]*)"', text)
    strings += [row.payload for row in OrmQ.objects.all()]
    return strings


@pytest.mark.django_db
def test_a_reset_request_stores_no_token_and_the_emailed_link_works(
    client, shopper, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = Q2
    shopper.refresh_from_db()
    token_now = default_token_generator.make_token(shopper)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:password_reset"), {"email": shopper.email})

    [record] = TaskRecord.objects.filter(task_path="accounts.tasks.send_password_reset_email")
    assert record.kwargs == {"user_id": shopper.pk, "base_url": "http://testserver/"}
    stored = _stored_strings(record)
    assert OrmQ.objects.exists()
    assert not any(token_now in value for value in stored)
    assert not any(default_token_generator.check_token(shopper, value) for value in stored)
    assert not any(urlsafe_base64_encode(force_bytes(shopper.pk)) == value for value in stored)
    assert mail.outbox == []

    assert runner.run_task(record.id) == "succeeded"

    [message] = mail.outbox
    link = re.search(r"http://testserver(/accounts/reset/\S+/\S+/)", message.body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert done.status_code == 302
    shopper.refresh_from_db()
    assert shopper.check_password(NEW_PASSWORD)
