import pytest
from django.core.cache import cache

from project import page_cache
from tests import factories
from tests.fixtures import database

# json_logs: what the production log handler would print, parsed (tests/fixtures/json_logs.py).
pytest_plugins = ["tests.fixtures.json_logs"]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    # Before the test database is created: by the owner role, not the superuser.
    database.prepare_roles()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database, created and migrated by the owner; the tests run as the app role
    (row-level security binds it, as in production). tests/fixtures/database.py."""
    with django_db_blocker.unblock():
        database.switch_to_app_role()
    yield
    with django_db_blocker.unblock():
        database.switch_to_owner()  # who may drop the test database


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Every test starts with no rate-limit counts (project.ratelimit keys only)."""
    _delete_rate_limit_keys()
    yield
    _delete_rate_limit_keys()


def _delete_rate_limit_keys() -> None:
    client = cache._cache.get_client(None, write=True)
    keys = list(client.scan_iter(match=cache.make_key("rl:*"), count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _fresh_page_cache():
    """Every test starts with no cached page: its data comes from factories, which (unlike the
    services) bump no page-cache version."""
    page_cache.bump([page_cache.CATALOGUE])


def pytest_collection_modifyitems(items):
    """Browser tests are marked `browser` and run last. pytest-playwright's sync API leaves
    its event loop marked as running in the process's main thread for the rest of the
    session, which changes how every later test runs there: Django's test client refuses to
    call an async view (the JSON API) inside a running loop, and database connections live in
    per-context storage instead of the thread's. A single process runs them last; `make test`
    runs them in a pytest run of their own (pytest-xdist hands out the largest files first,
    whatever the order here)."""
    for item in items:
        if "page" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture
def shopper(db):
    return factories.UserFactory(email="shopper@example.com", full_name="Sam Shopper")


@pytest.fixture
def vendor_member(db):
    return factories.VendorMembershipFactory(user__email="vendor@example.com").user


@pytest.fixture
def staff(db):
    return factories.UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)
