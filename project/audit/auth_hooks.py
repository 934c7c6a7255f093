"""Sign-in, sign-in failure and sign-out, from Django's auth signals.

Why signals here, against the project's rule of services and domain events: the admin's
login (/admin/login/) and Django's logout view have no service of ours, and every path that
authenticates (the shop's login, the admin's, a future API) goes through
django.contrib.auth.authenticate/login/logout, which send these. Hooking them is
infrastructure, the one place every sign-in path is guaranteed to pass.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

from project.audit import services as audit


def connect() -> None:
    user_logged_in.connect(on_logged_in, dispatch_uid="audit-login")
    user_login_failed.connect(on_login_failed, dispatch_uid="audit-login-failed")
    user_logged_out.connect(on_logged_out, dispatch_uid="audit-logout")


def on_logged_in(sender, request, user, **kwargs) -> None:
    audit.record("auth.login", actor=user, target=user, metadata=_path(request))


def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # The typed identifier is not stored (it may be a password typed in the wrong box);
    # an existing account it names is the entry's target, so staff see attacks on it.
    User = get_user_model()
    identifier = str(credentials.get(User.USERNAME_FIELD) or credentials.get("username") or "")
    account = User.objects.filter(email__iexact=identifier.strip()).first() if identifier else None
    audit.record(
        "auth.login_failed",
        target=account,
        metadata={"account_exists": account is not None, **_path(request)},
    )


def on_logged_out(sender, request, user, **kwargs) -> None:
    if user is None:
        return  # nobody was signed in: nothing happened
    audit.record("auth.logout", actor=user, target=user, metadata=_path(request))


def _path(request) -> dict:
    return {"path": request.path} if request is not None else {}
