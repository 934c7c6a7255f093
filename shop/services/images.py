"""Product images as they are stored: decoded and re-encoded from their pixels alone.

What a vendor uploads is never stored as sent. The image is decoded in full (so a truncated
or corrupt file is refused), its EXIF orientation applied, and only its pixels are written
again in the same format: EXIF (GPS position, camera serial), XMP, ICC profiles, comments
and anything appended after the image (a ZIP or HTML polyglot) are gone. Images above
PRODUCT_IMAGE_MAX_PIXELS are refused before they are decoded (Pillow's MAX_IMAGE_PIXELS,
set from the same setting, also stops a decompression bomb anywhere else).

The stored name carries a digest of the re-encoded bytes, so a name always means the same
picture and may be cached for a year (project.media).
"""

import hashlib
import io
import re
import warnings
from pathlib import PurePath
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils.text import slugify
from PIL import Image, ImageOps, UnidentifiedImageError

from project import page_cache
from project.errors import DomainError
from shop.models import Product
from shop.models.catalogue import THUMBNAIL_WIDTHS, thumbnail_name

# Pillow format -> (extension, save options)
FORMATS: dict[str, tuple[str, dict]] = {
    "JPEG": ("jpg", {"quality": 88, "optimize": True}),
    "PNG": ("png", {"optimize": False}),
    "WEBP": ("webp", {"quality": 88, "method": 4}),
}
NOT_AN_IMAGE = "This file is not an image we accept. Upload a JPEG, PNG or WebP image."


class InvalidImage(DomainError):
    code = "invalid_image"


class SanitisedImage(ContentFile):
    """The re-encoded bytes of an accepted image: what gets stored."""


def max_pixels() -> int:
    return settings.PRODUCT_IMAGE_MAX_PIXELS


def too_many_pixels_message(
    width: int | None = None, height: int | None = None, *, pixels: int | None = None
) -> str:
    limit = f"{max_pixels() / 1_000_000:g} megapixels"
    if width and height:
        size = f"{width:,} × {height:,} pixels ({width * height / 1_000_000:.0f} megapixels)"
    elif pixels:
        size = f"{pixels / 1_000_000:.0f} megapixels"
    else:
        return f"The image has too many pixels; the largest allowed is {limit}."
    return f"The image is {size}; the largest allowed is {limit}. Scale it down and try again."


def sanitise_product_image(upload: IO[bytes], *, name: str = "") -> SanitisedImage:
    """The upload re-encoded from its pixels (see the module docstring), or InvalidImage.

    An image already sanitised is returned as it is.
    """
    if isinstance(upload, SanitisedImage):
        return upload
    upload.seek(0)
    try:
        with warnings.catch_warnings():
            # Above MAX_IMAGE_PIXELS Pillow only warns (it refuses above twice that).
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload) as image:
                if image.format not in FORMATS:
                    raise InvalidImage(
                        f"{image.format or 'These'} images are not accepted. "
                        "Upload a JPEG, PNG or WebP image."
                    )
                image_format = image.format
                width, height = image.size
                if width * height > max_pixels():
                    raise InvalidImage(too_many_pixels_message(width, height))
                image.load()  # the first frame, decoded in full: a broken file fails here
                pixels = _pixels_only(ImageOps.exif_transpose(image), image_format)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Refused by Pillow on opening (over twice the limit); its message has the count.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        count = int(found.group(1)) if found else None
        raise InvalidImage(too_many_pixels_message(pixels=count)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise InvalidImage(NOT_AN_IMAGE) from None
    extension, options = FORMATS[image_format]
    buffer = io.BytesIO()
    pixels.save(buffer, format=image_format, **options)
    return named_image(
        buffer.getvalue(), name=name or getattr(upload, "name", ""), extension=extension
    )


def named_image(data: bytes, *, name: str, extension: str) -> SanitisedImage:
    """Image bytes named for storage: the name's slug and a digest of the bytes. Only for
    pixels already clean: sanitised uploads, or pictures the shop drew itself (demo data)."""
    stem = slugify(PurePath(name or "image").stem)[:60] or "image"
    digest = hashlib.sha256(data).hexdigest()[:16]
    return SanitisedImage(data, name=f"{stem}-{digest}.{extension}")


def _pixels_only(image: Image.Image, image_format: str) -> Image.Image:
    """A new image holding only the pixels (no info, EXIF, ICC or palette tricks), in a mode
    every accepted format can write."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if image_format == "JPEG" or not has_alpha:
        mode = "L" if image.mode in ("1", "L") else "RGB"
    else:
        mode = "RGBA"
    converted = image.convert(mode)
    return Image.frombytes(mode, converted.size, converted.tobytes())


THUMBNAIL_OPTIONS = {"quality": 82, "method": 4}


def make_product_thumbnails(*, product_id: int) -> Product | None:
    """Write the WebP thumbnails (THUMBNAIL_WIDTHS, never wider than the original) beside the
    product's image and record its size and that they exist; the original is kept. Done
    already, or the product gone or without an image: nothing happens. The row is updated only
    if its image is still the one the thumbnails were made from."""
    product = Product.objects.filter(pk=product_id).only("image", "thumbnails_for").first()
    name = product.image.name if product is not None else None
    if product is None or not name or product.thumbnails_for == name:
        return product
    storage = product.image.storage
    with storage.open(name) as original, Image.open(original) as image:
        image.load()
        width, height = image.size
        pixels = image.convert("RGBA" if image.mode in ("RGBA", "LA", "PA") else "RGB")
    for target in THUMBNAIL_WIDTHS:
        thumbnail = _thumbnail(pixels, target)
        path = thumbnail_name(name, target)
        if storage.exists(path):  # the name says which image it shows: already made
            continue
        saved = storage.save(path, thumbnail)
        if saved != path:  # pragma: no cover - a concurrent run wrote it first
            storage.delete(saved)
    if Product.objects.filter(pk=product_id, image=name).update(
        image_width=width, image_height=height, thumbnails_for=name
    ):
        page_cache.catalogue_changed()  # the cards' pictures now have sizes and srcsets
    return product


def _thumbnail(image: Image.Image, width: int) -> ContentFile:
    if image.width > width:
        height = round(image.height * width / image.width)
        image = image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", **THUMBNAIL_OPTIONS)
    return ContentFile(buffer.getvalue())
