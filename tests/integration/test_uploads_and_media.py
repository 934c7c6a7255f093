"""Product images: re-encoded on upload (no metadata, no polyglots, no decompression bombs)
and served as public media with safe headers, in development and in production alike."""

import io
import os
import re
import struct
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
import zlib

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import ExifTags, Image

from shop.models import Product
from shop.models.catalogue import thumbnail_name
from tests import factories
from tests.fixtures.asgi_server import django_env, free_port, spawn, stop, wait_for
from tests.fixtures.twofactor import sign_in_with_second_factor

GPS = ExifTags.IFD.GPSInfo


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return tmp_path / "media"


@pytest.fixture
def member(db):
    return factories.VendorMembershipFactory(user__email="potter@example.com")


def _post_product(client, member, upload, **extra):
    sign_in_with_second_factor(client, member.user)
    category = factories.CategoryFactory()
    return client.post(
        reverse("backoffice:product_create"),
        {
            "name": "Blue Mug",
            "category": category.pk,
            "price": "12.50",
            "stock": "4",
            "description": "",
            "is_active": "on",
            "image": upload,
            **extra,
        },
    )


def _jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (32, 24), "teal")
    exif = image.getexif()
    exif[ExifTags.Base.Make] = "SpyCam"
    gps = exif.get_ifd(GPS)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 36.0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, quality=90)
    return buffer.getvalue()


def _stored(media, product) -> bytes:
    return (media / product.image.name).read_bytes()


def test_an_uploaded_photo_loses_its_gps_position(client, member, media):
    original = _jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS)  # the test photo has one

    response = _post_product(client, member, SimpleUploadedFile("holiday.jpg", original))

    assert response.status_code == 302
    stored = _stored(media, Product.objects.get())
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG"
        assert image.size == (32, 24)
        assert dict(image.getexif()) == {}
        assert not image.getexif().get_ifd(GPS)
        assert "exif" not in image.info
    assert b"Exif" not in stored
    assert b"SpyCam" not in stored


def test_a_jpeg_zip_polyglot_is_stored_as_pixels_only(client, member, media):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("payload.html", "<script>alert(document.cookie)</script>")
    polyglot = _jpeg_with_gps() + archive.getvalue()

    assert _post_product(client, member, SimpleUploadedFile("x.jpg", polyglot)).status_code == 302

    stored = _stored(media, Product.objects.get())
    assert stored != polyglot
    assert b"PK\x03\x04" not in stored
    assert b"<script>" not in stored
    assert stored.endswith(b"\xff\xd9")  # ends where the JPEG ends: nothing trails it


def test_an_html_polyglot_png_is_re_encoded(client, member, media):
    buffer = io.BytesIO()
    Image.new("RGBA", (16, 16), (255, 0, 0, 128)).save(buffer, "PNG")
    html = b"<html><script>alert(1)</script></html>"
    # A text chunk and trailing bytes, both carrying HTML a sniffing browser might run.
    chunk = b"tEXt" + b"Comment\x00" + html
    png = buffer.getvalue()
    iend = png.rindex(b"IEND") - 4
    text_chunk = struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk))
    polyglot = png[:iend] + text_chunk + png[iend:] + html

    assert _post_product(client, member, SimpleUploadedFile("x.png", polyglot)).status_code == 302

    stored = _stored(media, Product.objects.get())
    assert b"<script>" not in stored
    assert b"tEXt" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (16, 16))
        assert image.getpixel((3, 3)) == (255, 0, 0, 128)


def _png_of(width: int, height: int) -> bytes:
    """A real 1-bit PNG of width x height pixels: tiny on disk, huge once decoded."""
    row = b"\x00" + bytes((width + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def test_a_144_megapixel_image_is_refused_and_nothing_is_stored(client, member, media):
    bomb = _png_of(12_000, 12_000)
    assert len(bomb) < 200_000

    response = _post_product(client, member, SimpleUploadedFile("huge.png", bomb))

    assert response.status_code == 200
    page = response.content.decode()
    assert (
        "The image is 144 megapixels; the largest allowed is 25 megapixels. "
        "Scale it down and try again."
    ) in page
    assert not Product.objects.exists()
    assert not media.exists() or not any(path.is_file() for path in media.rglob("*"))


def test_an_image_just_within_the_pixel_limit_is_accepted(client, member, media, settings):
    settings.PRODUCT_IMAGE_MAX_PIXELS = 300 * 200
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(buffer, "PNG")

    ok = _post_product(client, member, SimpleUploadedFile("ok.png", buffer.getvalue()))
    assert ok.status_code == 302

    buffer = io.BytesIO()
    Image.new("RGB", (301, 200), "white").save(buffer, "PNG")
    refused = _post_product(client, member, SimpleUploadedFile("big.png", buffer.getvalue()))
    assert "the largest allowed is 0.06 megapixels" in refused.content.decode()
    assert Product.objects.count() == 1


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buffer, "PNG")
    return buffer.getvalue()


def test_django_serves_product_images_with_safe_headers(client, member, media):
    _post_product(client, member, SimpleUploadedFile("mug.png", _png_bytes()))
    product = Product.objects.get()
    (media / "reports").mkdir()
    (media / "reports" / "old.csv").write_text("secret,1\n")
    (media / "products" / "page.html").write_text("<script>alert(1)</script>")
    client.logout()

    page = client.get(reverse("shop:product", args=[product.slug])).content.decode()
    assert f'src="{product.image.url}"' in page
    image = client.get(product.image.url)

    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert image["X-Content-Type-Options"] == "nosniff"
    assert image["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "sandbox" in image["Content-Security-Policy"]
    assert b"".join(image.streaming_content) == _stored(media, product)
    for path in (
        "/media/reports/old.csv",
        "/media/products/page.html",
        "/media/products/",
        "/media/products/../reports/old.csv",
        "/media/products/%2e%2e/reports/old.csv",
        "/media/products/missing.png",
    ):
        assert client.get(path).status_code == 404, path


@pytest.mark.django_db(transaction=True)
def test_a_production_run_shows_product_images(client, tmp_path, settings):
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    member = factories.VendorMembershipFactory()
    _post_product(client, member, SimpleUploadedFile("mug.png", _png_bytes()))
    product = Product.objects.get()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "BAZAAR_MODE": "production",
        "SECRET_KEY": "production-shape-test-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMAIL_HOST": "127.0.0.1",
        "API_JWT_KEYS": "test=Zq4vN8tR2xL6pW0sB3mY7cJ1hK5dF9gA-uE_oI2nQ7w",
        "SECURE_SSL_REDIRECT": "false",
        "SITE_URL": url,
        "STATIC_ROOT": str(tmp_path / "static"),
        "MEDIA_ROOT": str(media),
    }
    subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=django_settings.BASE_DIR,
        env=django_env(**env),
        check=True,
        capture_output=True,
    )
    server = spawn(
        [sys.executable, "-m", "uvicorn", "project.asgi:application", "--port", str(port)],
        log=tmp_path / "uvicorn.log",
        **env,
    )
    try:
        wait_for(lambda: _answers(f"{url}/healthz") or server.poll() is not None, timeout=30)
        assert server.poll() is None, (tmp_path / "uvicorn.log").read_text()
        with urllib.request.urlopen(f"{url}/p/{product.slug}/") as page:  # noqa: S310
            html = page.read().decode()
        # The page shows the product-page thumbnail the upload's task made; the original is kept.
        src = re.search(r'<img src="(/media/products/[^"]+)"', html).group(1)
        assert src == f"/media/{thumbnail_name(product.image.name, 800)}"
        with urllib.request.urlopen(f"{url}{src}") as image:  # noqa: S310
            assert image.status == 200
            assert image.headers["Content-Type"] == "image/webp"
            assert image.headers["X-Content-Type-Options"] == "nosniff"
            assert image.read() == (media / thumbnail_name(product.image.name, 800)).read_bytes()
        with urllib.request.urlopen(f"{url}/media/{product.image.name}") as image:  # noqa: S310
            assert image.headers["Content-Type"] == "image/png"
            assert image.read() == (media / product.image.name).read_bytes()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{url}/media/products/none.png")  # noqa: S310
        assert missing.value.code == 404
    finally:
        stop(server)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - the local test server
            return True
    except (urllib.error.URLError, ConnectionError):
        return False


def test_a_cdn_media_url_is_linked_allowed_by_the_csp_and_not_served_here():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "MEDIA_URL": "https://cdn.example.com/media/",
    }
    script = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from django.urls import Resolver404, resolve\n"
        "from shop.models import Product\n"
        "print(Product(image='products/2026/01/mug-0123456789abcdef.png').image.url)\n"
        "print(' '.join(map(str, settings.SECURE_CSP['img-src'])))\n"
        "try:\n"
        "    resolve('/media/products/2026/01/mug-0123456789abcdef.png')\n"
        "except Resolver404:\n"
        "    print('not served here')\n"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter and settings
        [sys.executable, "-c", script],
        env=env,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    url, img_src, served = result.stdout.splitlines()
    assert url == "https://cdn.example.com/media/products/2026/01/mug-0123456789abcdef.png"
    assert img_src == "'self' data: https://cdn.example.com"
    assert served == "not served here"
