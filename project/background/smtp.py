"""Django's SMTP email backend, telling an email the server refused from one it may have.

Once the server has said 354 to DATA and the message is on its way, only an explicit
4xx/5xx reply proves it was not accepted: a timeout or a dropped connection while it is sent
or while its final reply is awaited leaves the outcome unknown (the server may have queued
it), and this backend raises `DeliveryUnknown` for it instead of the SMTP error. Every
earlier failure (connecting, EHLO, MAIL, RCPT, the DATA command itself) and every explicit
error reply is raised as smtplib raised it: the message was not accepted, sending again is
safe.

    MAILERS = {"default": {"BACKEND": "project.background.smtp.EmailBackend", "OPTIONS": {...}}}
"""

import smtplib
from typing import TYPE_CHECKING

from django.core.mail.backends import smtp

# The mixin's base: smtplib.SMTP for the type checker, which then checks its super() calls.
if TYPE_CHECKING:
    _Base = smtplib.SMTP
else:
    _Base = object


class DeliveryUnknown(smtplib.SMTPException):
    """The message data went out but no reply said whether the server accepted it."""


class _OutcomeAwareMixin(_Base):
    """An smtplib connection that knows whether the message data of its last sendmail()
    may have reached the server (the server said 354 to DATA)."""

    _awaiting_data_reply = False
    message_data_started = False

    def sendmail(self, *args, **kwargs):
        self.message_data_started = False
        try:
            return super().sendmail(*args, **kwargs)
        except Exception as exc:
            refused = isinstance(exc, smtplib.SMTPResponseException) and (
                400 <= exc.smtp_code < 600
            )
            if self.message_data_started and not refused:
                raise DeliveryUnknown(f"No answer to the message data: {exc}") from exc
            raise

    def data(self, msg):
        self._awaiting_data_reply = True
        try:
            return super().data(msg)
        finally:
            self._awaiting_data_reply = False

    def getreply(self):
        reply = super().getreply()
        if self._awaiting_data_reply:
            # The first reply inside data() answers the DATA command; after a 354 the
            # message itself is sent.
            self._awaiting_data_reply = False
            self.message_data_started = reply[0] == 354
        return reply


class _SMTP(_OutcomeAwareMixin, smtplib.SMTP):
    pass


class _SMTPSSL(_OutcomeAwareMixin, smtplib.SMTP_SSL):
    pass


class EmailBackend(smtp.EmailBackend):
    """Django's SMTP backend (same OPTIONS), raising `DeliveryUnknown` when the outcome of
    a message is unknown."""

    @property
    def connection_class(self):
        return _SMTPSSL if self.use_ssl else _SMTP

    def _close_connection(self, connection):
        # QUIT comes after every message had its answer: a failure to say goodbye must not
        # turn a sent message, or an unknown outcome, into an error that invites a resend.
        try:
            super()._close_connection(connection)  # type: ignore[misc]  # not in django-stubs 6.1
        except (smtplib.SMTPException, OSError):
            connection.close()
