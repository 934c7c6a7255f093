import pytest
from django.urls import reverse

from accounts.models import Address
from tests import factories

PROFILE_URL = reverse("accounts:profile")

ADDRESS_DATA = {
    "full_name": "Sam Shopper",
    "line1": "1 Canal Street",
    "line2": "",
    "city": "Hamburg",
    "postal_code": "20095",
    "country": "de",
    "phone": "+49 40 123456",
}


@pytest.fixture
def signed_in(client, shopper):
    client.force_login(shopper)
    return client


def _address_snapshot(address: Address) -> dict:
    address.refresh_from_db()
    return {field: getattr(address, field) for field in ADDRESS_DATA}


def test_profile_requires_login(client, db):
    response = client.get(PROFILE_URL)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next={PROFILE_URL}"


def test_profile_page_lists_addresses_with_default_marked(
    signed_in, shopper, django_assert_max_num_queries
):
    home = factories.AddressFactory(user=shopper, line1="1 Home Road")
    factories.AddressFactory(user=shopper, line1="2 Work Lane")
    factories.AddressFactory(line1="9 Stranger Street")
    shopper.default_address = home
    shopper.save()

    # user, cart badge, vendor menu, addresses, and the sign-in security summary
    with django_assert_max_num_queries(5):
        response = signed_in.get(PROFILE_URL)

    content = response.content.decode()
    assert response.status_code == 200
    assert "1 Home Road" in content
    assert "2 Work Lane" in content
    assert "9 Stranger Street" not in content
    assert content.count("Default address</span>") == 1
    assert reverse("accounts:password_change") in content


def test_update_profile(signed_in, shopper):
    response = signed_in.post(PROFILE_URL, {"full_name": "Samantha S", "phone": "+44 20 7946 0000"})

    assert response.status_code == 302
    shopper.refresh_from_db()
    assert shopper.full_name == "Samantha S"
    assert shopper.phone == "+44 20 7946 0000"


def test_invalid_profile_changes_nothing(signed_in, shopper):
    response = signed_in.post(PROFILE_URL, {"full_name": "", "phone": "call me maybe"})

    content = response.content.decode()
    assert response.status_code == 200
    assert "This field is required." in content
    assert "Enter a phone number using digits, spaces and an optional leading +." in content
    shopper.refresh_from_db()
    assert shopper.full_name == "Sam Shopper"
    assert shopper.phone == ""


def test_first_address_becomes_default(signed_in, shopper):
    response = signed_in.post(reverse("accounts:address_add"), ADDRESS_DATA)

    assert response.status_code == 302
    address = Address.objects.get(user=shopper)
    assert address.country == "DE"
    assert address.city == "Hamburg"
    shopper.refresh_from_db()
    assert shopper.default_address == address


def test_adding_address_with_make_default(signed_in, shopper):
    first = factories.AddressFactory(user=shopper)
    shopper.default_address = first
    shopper.save()

    signed_in.post(reverse("accounts:address_add"), {**ADDRESS_DATA, "make_default": "on"})

    shopper.refresh_from_db()
    assert shopper.default_address.line1 == "1 Canal Street"


def test_invalid_address_is_rejected_with_messages(signed_in, shopper):
    response = signed_in.post(
        reverse("accounts:address_add"), {**ADDRESS_DATA, "country": "D1", "city": ""}
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert "Choose a country from the list." in content
    assert "This field is required." in content
    assert not Address.objects.exists()


def test_edit_own_address(signed_in, shopper):
    address = factories.AddressFactory(user=shopper)
    url = reverse("accounts:address_edit", args=[address.pk])
    assert signed_in.get(url).status_code == 200

    response = signed_in.post(url, {**ADDRESS_DATA, "make_default": "on"})

    assert response.status_code == 302
    assert _address_snapshot(address) == {**ADDRESS_DATA, "country": "DE"}
    shopper.refresh_from_db()
    assert shopper.default_address == address


def test_delete_own_default_address_clears_default(signed_in, shopper):
    address = factories.AddressFactory(user=shopper)
    shopper.default_address = address
    shopper.save()

    response = signed_in.post(reverse("accounts:address_delete", args=[address.pk]))

    assert response.status_code == 302
    assert not Address.objects.filter(pk=address.pk).exists()
    shopper.refresh_from_db()
    assert shopper.default_address is None


def test_delete_requires_post(signed_in, shopper):
    address = factories.AddressFactory(user=shopper)

    response = signed_in.get(reverse("accounts:address_delete", args=[address.pk]))

    assert response.status_code == 405
    assert Address.objects.filter(pk=address.pk).exists()


def test_make_default_with_htmx_returns_the_address_list_fragment(signed_in, shopper):
    first = factories.AddressFactory(user=shopper, line1="1 First Street")
    second = factories.AddressFactory(user=shopper, line1="2 Second Street")
    shopper.default_address = first
    shopper.save()

    response = signed_in.post(
        reverse("accounts:address_default", args=[second.pk]), headers={"HX-Request": "true"}
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<div id="address-list">')
    assert "<html" not in content
    assert "Default address updated." in content
    assert content.count("Default address</span>") == 1
    shopper.refresh_from_db()
    assert shopper.default_address == second


def test_delete_with_htmx_returns_the_address_list_fragment(signed_in, shopper):
    keep = factories.AddressFactory(user=shopper, line1="1 Keep Street")
    drop = factories.AddressFactory(user=shopper, line1="2 Drop Street")

    response = signed_in.post(
        reverse("accounts:address_delete", args=[drop.pk]), headers={"HX-Request": "true"}
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert "1 Keep Street" in content
    assert "2 Drop Street" not in content
    assert Address.objects.filter(user=shopper).get() == keep


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("accounts:address_edit", "get"),
        ("accounts:address_edit", "post"),
        ("accounts:address_delete", "post"),
        ("accounts:address_default", "post"),
    ],
)
def test_another_users_address_is_404_and_unchanged(signed_in, shopper, name, method):
    stranger = factories.UserFactory()
    theirs = factories.AddressFactory(user=stranger, line1="9 Private Road")
    stranger.default_address = theirs
    stranger.save()
    before = _address_snapshot(theirs)

    response = getattr(signed_in, method)(reverse(name, args=[theirs.pk]), ADDRESS_DATA)

    assert response.status_code == 404
    assert _address_snapshot(theirs) == before
    stranger.refresh_from_db()
    shopper.refresh_from_db()
    assert stranger.default_address == theirs
    assert shopper.default_address is None


def test_address_pages_require_login(client, db):
    address = factories.AddressFactory()

    for url in (
        reverse("accounts:address_add"),
        reverse("accounts:address_edit", args=[address.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
