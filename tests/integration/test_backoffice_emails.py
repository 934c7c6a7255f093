"""Backoffice emails are sent once per task, however often that task is retried."""

from types import SimpleNamespace

import pytest
from django.core import mail

from backoffice import tasks
from project import emails
from project.background import emails as email_guard
from project.background.models import SentEmail
from shop.models import LineStatus
from tests import factories


def _run_twice(task, **kwargs) -> None:
    # A retry or a redelivery runs the same task result again: same id, same arguments.
    context = SimpleNamespace(task_result=SimpleNamespace(id="retried-task"))
    task.call(context, **kwargs)
    task.call(context, **kwargs)


def test_a_retried_invitation_email_is_sent_once(db):
    invitation = factories.VendorInvitationFactory(email="new.member@example.com")

    _run_twice(tasks.send_vendor_invitation_email, invitation_id=invitation.pk)

    assert [message.to for message in mail.outbox] == [["new.member@example.com"]]


def test_a_retried_line_cancelled_email_is_sent_once(db, shopper):
    line = factories.OrderLineFactory(order__customer=shopper, status=LineStatus.CANCELLED)

    _run_twice(tasks.send_line_cancelled_email, line_id=line.pk)

    assert [message.to for message in mail.outbox] == [["shopper@example.com"]]


def test_a_retried_vendor_decision_email_is_sent_once(db):
    membership = factories.VendorMembershipFactory(user__email="owner@example.com")

    _run_twice(tasks.send_vendor_status_email, vendor_id=membership.vendor_id, outcome="approved")

    assert [message.to for message in mail.outbox] == [["owner@example.com"]]


def test_an_owner_whose_email_outcome_is_unknown_does_not_hold_back_the_others(db):
    membership = factories.VendorMembershipFactory(user__email="first.owner@example.com")
    factories.VendorMembershipFactory(
        vendor=membership.vendor, user__email="second.owner@example.com"
    )
    context = SimpleNamespace(task_result=SimpleNamespace(id="cut-off-task"))
    [first, second] = tasks._vendor_recipients(membership.vendor)
    # An earlier attempt was cut off while talking to the mail server about the first owner.
    SentEmail.objects.create(
        key=tasks._recipient_key(emails.task_email_key(context, "vendor_approved"), first),
        to=first,
        subject="Your shop is approved",
        template="vendor_approved",
        status=SentEmail.Status.SENDING,
    )

    with pytest.raises(email_guard.EmailOutcomeUnknown):
        tasks.send_vendor_status_email.call(
            context, vendor_id=membership.vendor_id, outcome="approved"
        )

    assert [message.to for message in mail.outbox] == [[second]]
    assert SentEmail.objects.get(to=first).status == SentEmail.Status.SENDING
