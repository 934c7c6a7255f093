from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in  # noqa: PLC0415

        from accounts import sessions  # noqa: PLC0415 - models are loaded only now

        # Every way of signing in (the shop's form, the second step, tests' force_login)
        # starts the session's lifetime clocks.
        user_logged_in.connect(sessions.start_session_clocks, dispatch_uid="session-clocks")
