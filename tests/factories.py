from decimal import Decimal

import factory
from django.utils import timezone

from accounts.models import Address, User
from shop.models import Category, Product, Vendor, VendorMembership, VendorStatus

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    full_name = factory.Faker("name")
    email_verified_at = factory.LazyFunction(timezone.now)
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy hook
        if create:
            obj.save()


class AddressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Address

    user = factory.SubFactory(UserFactory)
    full_name = factory.LazyAttribute(lambda o: o.user.full_name or "Ada Lovelace")
    line1 = factory.Sequence(lambda n: f"{n} Market Street")
    city = "Berlin"
    postal_code = "10115"
    country = "DE"


class VendorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vendor

    name = factory.Sequence(lambda n: f"Vendor {n}")
    slug = factory.Sequence(lambda n: f"vendor-{n}")
    contact_email = factory.Sequence(lambda n: f"vendor{n}@example.com")
    status = VendorStatus.APPROVED


class VendorMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VendorMembership

    vendor = factory.SubFactory(VendorFactory)
    user = factory.SubFactory(UserFactory)
    role = VendorMembership.Role.OWNER


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    vendor = factory.SubFactory(VendorFactory)
    category = factory.SubFactory(CategoryFactory)
    name = factory.Sequence(lambda n: f"Product {n}")
    slug = factory.Sequence(lambda n: f"product-{n}")
    description = "A fine thing, made with care."
    price = Decimal("19.99")
    stock = 10
    is_active = True


# --- Cart, orders (cart/checkout area) ---


class CartFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "shop.Cart"

    user = None


class CartItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "shop.CartItem"

    cart = factory.SubFactory(CartFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = 1


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "shop.Order"

    customer = factory.SubFactory(UserFactory)
    total = Decimal("19.99")
    ship_name = "Ada Lovelace"
    ship_line1 = "1 Market Street"
    ship_city = "Berlin"
    ship_postal_code = "10115"
    ship_country = "DE"


class OrderLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "shop.OrderLine"

    order = factory.SubFactory(OrderFactory)
    product = factory.SubFactory(ProductFactory)
    vendor = factory.LazyAttribute(lambda o: o.product.vendor)
    product_name = factory.LazyAttribute(lambda o: o.product.name)
    unit_price = factory.LazyAttribute(lambda o: o.product.price)
    quantity = 1
    line_total = factory.LazyAttribute(lambda o: o.unit_price * o.quantity)


# --- Backoffice: fulfilment and teams ---


class CapturedPaymentFactory(factory.django.DjangoModelFactory):
    """A payment that was captured: the order it belongs to is paid for."""

    class Meta:
        model = "shop.Payment"

    order = factory.SubFactory(OrderFactory, status="paid")
    amount = factory.LazyAttribute(lambda o: o.order.total)
    status = "captured"
    idempotency_key = factory.Sequence(lambda n: f"test-payment-{n}")
    payment_method = "tok_test"
    card_brand = "Visa"
    card_last4 = "4242"


class ShipmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "shop.Shipment"

    order = factory.SubFactory(OrderFactory, status="paid")
    vendor = factory.SubFactory(VendorFactory)
    carrier = "DHL"
    tracking_number = factory.Sequence(lambda n: f"TRACK{n:06d}")


class VendorInvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "shop.VendorInvitation"

    vendor = factory.SubFactory(VendorFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = VendorMembership.Role.STAFF
