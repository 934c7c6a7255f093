"""Product images get WebP thumbnails (card and product-page sizes) from a task on the
default queue; the original is kept, and pages use them (srcset, width/height) once made."""

import io
import re

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from shop.models import OrderStatus, Product
from shop.models.catalogue import thumbnail_name
from shop.services import images
from shop.tasks import emails as email_tasks
from shop.tasks import images as image_tasks
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return tmp_path / "media"


def _jpeg(size=(1200, 900)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "teal").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _product_with_image(size=(1200, 900), **fields) -> Product:
    product = factories.ProductFactory(**fields)
    product.image = images.sanitise_product_image(io.BytesIO(_jpeg(size)), name="mug.jpg")
    product.save()
    return product


def _size(media, name) -> tuple[str, tuple[int, int]]:
    with Image.open(media / name) as image:
        return image.format, image.size


def test_the_task_makes_both_webp_sizes_and_keeps_the_original(media):
    product = _product_with_image()
    original = (media / product.image.name).read_bytes()

    image_tasks.make_product_thumbnails.enqueue(product.pk)

    product.refresh_from_db()
    assert _size(media, thumbnail_name(product.image.name, 320)) == ("WEBP", (320, 240))
    assert _size(media, thumbnail_name(product.image.name, 800)) == ("WEBP", (800, 600))
    assert (media / product.image.name).read_bytes() == original
    assert (product.image_width, product.image_height) == (1200, 900)
    assert product.thumbnails_for == product.image.name


def test_a_small_image_is_not_enlarged(media):
    product = _product_with_image(size=(500, 250))

    image_tasks.make_product_thumbnails.enqueue(product.pk)

    assert _size(media, thumbnail_name(product.image.name, 320)) == ("WEBP", (320, 160))
    assert _size(media, thumbnail_name(product.image.name, 800)) == ("WEBP", (500, 250))
    product.refresh_from_db()
    assert product.page_picture.srcset.endswith("-800w.webp 500w")


def test_an_upload_enqueues_the_thumbnails_after_commit(
    client, media, django_capture_on_commit_callbacks
):
    member = factories.VendorMembershipFactory(user__email="potter@example.com")
    sign_in_with_second_factor(client, member.user)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            reverse("backoffice:product_create"),
            {
                "name": "Blue Mug",
                "category": factories.CategoryFactory().pk,
                "price": "12.50",
                "stock": "4",
                "description": "",
                "is_active": "on",
                "image": SimpleUploadedFile("mug.jpg", _jpeg()),
            },
        )

    assert response.status_code == 302
    enqueue = image_tasks.make_product_thumbnails.enqueue
    assert any(getattr(c, "func", None) == enqueue for c in callbacks)
    product = Product.objects.get(name="Blue Mug")
    assert product.thumbnails_for == product.image.name
    assert _size(media, thumbnail_name(product.image.name, 320)) == ("WEBP", (320, 240))


def _card_img(html: str, product: Product) -> str:
    cards = re.findall(r"<img [^>]*>", html)
    return next(tag for tag in cards if f'alt="{product.name}"' in tag)


def test_the_card_shows_the_original_until_the_thumbnails_exist_then_a_srcset(
    client, django_capture_on_commit_callbacks
):
    product = _product_with_image(name="Teal Mug")

    before = _card_img(client.get(reverse("shop:product_list")).content.decode(), product)
    assert f'src="{product.image.url}"' in before
    assert "srcset" not in before

    with django_capture_on_commit_callbacks(execute=True):  # the new pictures date the page
        image_tasks.make_product_thumbnails.enqueue(product.pk)
    product.refresh_from_db()
    card = _card_img(client.get(reverse("shop:product_list")).content.decode(), product)

    small = product.image.storage.url(thumbnail_name(product.image.name, 320))
    large = product.image.storage.url(thumbnail_name(product.image.name, 800))
    assert f'src="{small}"' in card
    assert f'srcset="{small} 320w, {large} 800w"' in card
    assert 'sizes="' in card
    assert 'width="320" height="240"' in card
    assert 'loading="lazy"' in card
    response = client.get(small)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"


def test_the_product_page_shows_the_large_thumbnail_with_its_size(client):
    product = _product_with_image(name="Teal Mug")
    image_tasks.make_product_thumbnails.enqueue(product.pk)

    html = client.get(product.get_absolute_url()).content.decode()

    large = product.image.storage.url(thumbnail_name(Product.objects.get().image.name, 800))
    img = _card_img(html, product)
    assert f'src="{large}"' in img
    assert 'width="800" height="600"' in img
    assert "srcset=" in img
    assert 'loading="lazy"' not in img


def _line_thumb(html: str) -> str:
    return re.search(r'<span class="line-thumb" aria-hidden="true">(.*?)</span>', html).group(1)


def test_the_cart_shows_each_line_with_its_card_thumbnail(client):
    product = _product_with_image(name="Teal Mug")
    image_tasks.make_product_thumbnails.enqueue(product.pk)
    client.post(reverse("shop:cart_add"), {"product_id": product.pk, "quantity": 1})

    thumb = _line_thumb(client.get(reverse("shop:cart")).content.decode())

    small = product.image.storage.url(thumbnail_name(product.image.name, 320))
    assert f'src="{small}"' in thumb
    assert 'width="320" height="240"' in thumb


def test_the_backoffice_products_list_shows_thumbnails(client):
    product = _product_with_image(name="Teal Mug")
    image_tasks.make_product_thumbnails.enqueue(product.pk)
    member = factories.VendorMembershipFactory(vendor=product.vendor)
    sign_in_with_second_factor(client, member.user)

    thumb = _line_thumb(client.get(reverse("backoffice:product_list")).content.decode())

    assert f'src="{product.image.storage.url(thumbnail_name(product.image.name, 320))}"' in thumb


def test_the_checkout_review_shows_each_line_with_its_card_thumbnail(client, shopper):
    product = _product_with_image(name="Teal Mug")
    image_tasks.make_product_thumbnails.enqueue(product.pk)
    home = factories.AddressFactory(user=shopper)
    shopper.default_address = home
    shopper.save()
    factories.CartItemFactory(cart__user=shopper, product=product, quantity=1)
    client.force_login(shopper)
    client.post(reverse("shop:checkout"), {"address": str(home.pk)})

    thumb = _line_thumb(client.get(reverse("shop:checkout_review")).content.decode())

    assert f'src="{product.image.storage.url(thumbnail_name(product.image.name, 320))}"' in thumb


def test_the_order_page_shows_each_line_with_its_card_thumbnail_or_initial(client, shopper):
    product = _product_with_image(name="Teal Mug")
    image_tasks.make_product_thumbnails.enqueue(product.pk)
    order = factories.OrderFactory(customer=shopper)
    factories.OrderLineFactory(order=order, product=product, product_name="Teal Mug")
    withdrawn = factories.OrderLineFactory(order=order, product_name="Withdrawn Vase")
    withdrawn.product.delete()  # the line keeps its snapshot; its product is gone
    client.force_login(shopper)

    html = client.get(reverse("shop:order_detail", args=[order.pk])).content.decode()

    thumbs = re.findall(r'<span class="line-thumb" aria-hidden="true">(.*?)</span>', html)
    small = product.image.storage.url(thumbnail_name(product.image.name, 320))
    assert any(f'src="{small}"' in thumb for thumb in thumbs)
    assert "W" in thumbs


def test_the_backoffice_order_page_shows_each_line_with_its_card_thumbnail(client, shopper):
    product = _product_with_image(name="Teal Mug")
    image_tasks.make_product_thumbnails.enqueue(product.pk)
    order = factories.OrderFactory(customer=shopper, status=OrderStatus.PAID)
    factories.OrderLineFactory(order=order, product=product, product_name="Teal Mug")
    member = factories.VendorMembershipFactory(vendor=product.vendor)
    sign_in_with_second_factor(client, member.user)

    html = client.get(reverse("backoffice:order_detail", args=[order.pk])).content.decode()

    small = product.image.storage.url(thumbnail_name(product.image.name, 320))
    assert f'src="{small}"' in _line_thumb(html)


def test_order_emails_show_each_line_with_its_absolute_card_thumbnail(settings, shopper):
    settings.SITE_URL = "https://bazaar.example"
    product = _product_with_image(name="Teal Mug")
    image_tasks.make_product_thumbnails.enqueue(product.pk)
    order = factories.OrderFactory(customer=shopper, status=OrderStatus.PAID)
    factories.OrderLineFactory(order=order, product=product, product_name="Teal Mug")
    withdrawn = factories.OrderLineFactory(order=order, product_name="Withdrawn Vase")
    withdrawn.product.delete()  # no picture left: the line is named without one
    product.vendor.contact_email = "maker@example.com"
    product.vendor.save()

    email_tasks.send_order_confirmation.call(order.pk)
    email_tasks.send_vendor_new_order.call(order.pk, product.vendor_id)

    small = product.image.storage.url(thumbnail_name(product.image.name, 320))
    for message in mail.outbox:
        html = message.alternatives[0].content
        images_shown = re.findall(r'<img src="([^"]+)"', html)
        assert images_shown == [f"https://bazaar.example{small}"], message.to
        assert "Withdrawn Vase" in html or message.to == ["maker@example.com"]
    assert sorted(m.to[0] for m in mail.outbox) == sorted([shopper.email, "maker@example.com"])
