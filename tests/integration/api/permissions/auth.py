"""Permission rows of the auth endpoints: signing in and refreshing take their credentials
from the body (anyone may ask); logout and whoami need a bearer token."""

from api.services import sessions
from tests.factories import PASSWORD
from tests.integration.api.permissions.rows import Row, everyone, signed_in


def _fresh_refresh_token(world) -> dict[str, str]:
    return {"refresh_token": sessions.start_session(user=world.shopper).refresh_token}


ROWS = [
    # The shopper's credentials (vendor owners and staff must use a second factor).
    Row(
        "POST",
        "/api/v1/auth/token",
        everyone(200),
        body=lambda world: {"email": world.shopper.email, "password": PASSWORD},
    ),
    Row("POST", "/api/v1/auth/refresh", everyone(200), body=_fresh_refresh_token),
    Row("POST", "/api/v1/auth/logout", signed_in(204), body=lambda world: {}),
    Row("GET", "/api/v1/auth/whoami", signed_in(200)),
]
