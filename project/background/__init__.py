"""Background work: a Django Tasks backend that hands `@task` work to Django-Q2 workers."""
