"""The embedded default's mailer writes each email as an .eml file and its HTML part as an
.html file beside it."""

import email
import os
import subprocess
import sys
from email import policy

from django.core.mail import EmailMultiAlternatives

from project.background.mail_files import EmailBackend


def test_writes_each_email_as_an_eml_and_an_html_copy(tmp_path):
    message = EmailMultiAlternatives(
        subject="Your order BZ-000042 is confirmed",
        body="See your order: http://127.0.0.1:8401/orders/42/",
        from_email="Bazaar <no-reply@bazaar.local>",
        to=["sam@example.com"],
    )
    message.attach_alternative('<a href="http://127.0.0.1:8401/orders/42/">See</a>', "text/html")

    sent = EmailBackend(file_path=tmp_path).send_messages([message])

    assert sent == 1
    [eml] = tmp_path.glob("*.eml")
    [html] = tmp_path.glob("*.html")
    assert eml.stem == html.stem
    assert "your-order-bz-000042-is-confirmed" in eml.stem
    parsed = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert parsed["Subject"] == "Your order BZ-000042 is confirmed"
    assert parsed["To"] == "sam@example.com"
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    assert text.strip() == "See your order: http://127.0.0.1:8401/orders/42/"
    assert parsed.get_body(preferencelist=("html",)).get_content().strip() == (
        '<a href="http://127.0.0.1:8401/orders/42/">See</a>'
    )
    assert html.read_text() == '<a href="http://127.0.0.1:8401/orders/42/">See</a>'


def test_two_emails_with_one_subject_are_two_files_and_a_text_only_one_has_no_html(tmp_path):
    messages = [
        EmailMultiAlternatives(subject="Hello", body="one", to=["a@example.com"]),
        EmailMultiAlternatives(subject="Hello", body="two", to=["b@example.com"]),
    ]

    sent = EmailBackend(file_path=tmp_path).send_messages(messages)

    assert sent == 2
    assert len(list(tmp_path.glob("*.eml"))) == 2
    assert list(tmp_path.glob("*.html")) == []


def test_the_embedded_default_selects_it_and_a_mail_server_replaces_it():
    def backend(**env) -> str:
        environment = {
            key: value
            for key, value in os.environ.items()
            if key not in {"EMAIL_HOST", "BAZAAR_MODE", "DJANGO_SETTINGS_MODULE"}
        }
        shown = subprocess.run(
            [sys.executable, "-c", SHOW_BACKEND],
            env={**environment, **env, "DJANGO_SETTINGS_MODULE": "project.settings"},
            capture_output=True,
            text=True,
            check=True,
        )
        return shown.stdout.strip()

    assert backend() == "project.background.mail_files.EmailBackend"
    assert backend(EMAIL_HOST="smtp.example.com") == "project.background.smtp.EmailBackend"


SHOW_BACKEND = "from django.conf import settings; print(settings.MAILERS['default']['BACKEND'])"
