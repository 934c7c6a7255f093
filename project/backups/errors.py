class BackupError(Exception):
    """A backup or restore that cannot go ahead, or did not check out; the message says why
    and what to do."""
