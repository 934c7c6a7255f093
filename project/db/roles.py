"""The database roles (engineer C builds the grants around this list).

Tables listed here get only SELECT and INSERT for the app role: rows are appended, never
changed or removed by the application.
"""

APPEND_ONLY_TABLES = [
    "audit_auditentry",
]
