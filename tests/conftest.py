import pytest

from tests import factories


@pytest.fixture
def shopper(db):
    return factories.UserFactory(email="shopper@example.com", full_name="Sam Shopper")


@pytest.fixture
def vendor_member(db):
    return factories.VendorMembershipFactory(user__email="vendor@example.com").user


@pytest.fixture
def staff(db):
    return factories.UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)
