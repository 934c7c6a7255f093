"""The embedded default's mailer: every email is a file a developer can open.

Django's file backend appends all of a process's emails to one log file; this one writes each
email on its own, as `<time>-<subject>.eml` (the whole message, opened by any mail program)
and, beside it, `<time>-<subject>.html` (its HTML part, to open in a browser).
"""

import uuid
from datetime import UTC, datetime
from pathlib import Path

from django.core.mail.backends import filebased
from django.utils.text import slugify


class EmailBackend(filebased.EmailBackend):
    def send_messages(self, email_messages) -> int:
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            try:
                self.write_files(message)
            except OSError:
                if not self.fail_silently:
                    raise
            else:
                sent += 1
        return sent

    def write_files(self, message) -> Path:
        """Write the .eml (and the .html copy of its HTML part, if any); return the .eml."""
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
        # A short random suffix: workers in several processes write to the same folder.
        stem = f"{stamp}-{slugify(message.subject)[:60] or 'email'}-{uuid.uuid4().hex[:6]}"
        folder = Path(self.file_path)
        eml = folder / f"{stem}.eml"
        eml.write_bytes(message.message().as_bytes())
        html = html_part(message)
        if html is not None:
            (folder / f"{stem}.html").write_text(html, encoding="utf-8")
        return eml


def html_part(message) -> str | None:
    """The message's HTML alternative, or its body when the message itself is HTML."""
    for content, mimetype in getattr(message, "alternatives", []):
        if mimetype == "text/html":
            return content
    if getattr(message, "content_subtype", "") == "html":
        return message.body
    return None
