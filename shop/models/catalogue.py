import posixpath
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.urls import reverse

from shop.models.vendors import Vendor

LOW_STOCK_THRESHOLD = 5
# The WebP thumbnails made of every product image: a card's and the product page's width.
CARD_WIDTH = 320
PAGE_WIDTH = 800
THUMBNAIL_WIDTHS = (CARD_WIDTH, PAGE_WIDTH)


def thumbnail_name(image_name: str, width: int) -> str:
    """Where the `width` px WebP thumbnail of a stored image lives: beside it, under the same
    digest-carrying name (so it is public wherever the original is, and cacheable as long)."""
    stem, _ = posixpath.splitext(image_name)
    return f"{stem}-{width}w.webp"


@dataclass(frozen=True)
class Picture:
    """What an <img> of a product needs: `src` and its size, `srcset` once thumbnails exist."""

    src: str
    srcset: str
    width: int | None
    height: int | None


class Category(models.Model):
    name = models.CharField(max_length=80, unique=True)
    slug = models.SlugField(max_length=90, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("shop:category", kwargs={"slug": self.slug})


class Product(models.Model):
    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="products")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, unique=True)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    stock = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    image = models.ImageField(upload_to="products/%Y/%m/", blank=True)
    # Set by the thumbnail task (shop.tasks.images): the image's size, and which image the
    # thumbnails beside it were made from (until it equals `image`, pages show the original).
    image_width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    image_height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    thumbnails_for = models.CharField(max_length=100, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Bumped by every service write: the API's ETag, so a stale If-Match write is refused.
    version = models.PositiveIntegerField(default=1, db_default=1, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(stock__gte=0), name="product_stock_gte_0"),
            models.CheckConstraint(
                condition=models.Q(price__gte=Decimal("0.00")), name="product_price_gte_0"
            ),
        ]
        # One index per way a shopper's page walks the catalogue, each in the page's order, so
        # the first page is read off the index (docs/search.md has the plans).
        indexes = [
            models.Index(fields=["is_active", "-created_at", "-id"], name="product_visible_newest"),
            models.Index(
                fields=["category", "is_active", "-created_at", "-id"],
                name="product_category_newest",
            ),
            models.Index(fields=["is_active", "price"], name="product_active_price"),
            models.Index(
                fields=["is_active", "-stock", "-created_at", "-id"],
                condition=models.Q(stock__gt=0),
                name="product_featured",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("shop:product", kwargs={"slug": self.slug})

    def picture(self, width: int = CARD_WIDTH) -> Picture | None:
        """The image shown `width` px wide at most: its thumbnail and a srcset of both once
        they are made, else the original; None without an image."""
        name, full_width, full_height = self.image.name, self.image_width, self.image_height
        if not name:
            return None
        if self.thumbnails_for != name or not full_width or not full_height:
            return Picture(src=self.image.url, srcset="", width=None, height=None)
        storage = self.image.storage
        sizes = {
            w: (min(w, full_width), round(full_height * min(w, full_width) / full_width))
            for w in THUMBNAIL_WIDTHS
        }
        urls = {w: storage.url(thumbnail_name(name, w)) for w in THUMBNAIL_WIDTHS}
        srcset = ", ".join(f"{urls[w]} {sizes[w][0]}w" for w in THUMBNAIL_WIDTHS)
        shown = width if width in THUMBNAIL_WIDTHS else CARD_WIDTH
        return Picture(
            src=urls[shown], srcset=srcset, width=sizes[shown][0], height=sizes[shown][1]
        )

    @property
    def card_picture(self) -> Picture | None:
        return self.picture(CARD_WIDTH)

    @property
    def page_picture(self) -> Picture | None:
        return self.picture(PAGE_WIDTH)

    @property
    def in_stock(self) -> bool:
        return self.stock > 0

    @property
    def is_low_stock(self) -> bool:
        return 0 < self.stock <= LOW_STOCK_THRESHOLD


class ProductSearch(models.Model):
    """A product's full-text search document: its name (weight A) and description (weight B).

    PostgreSQL keeps it (triggers from migration 0007 write it whenever a product is created
    or its name or description changes); SQLite leaves it empty and searches with icontains.
    It is a table of its own, outside row-level security, because PostgreSQL will not use an
    index for an operator that is not leakproof (`@@`) on a table whose policies must be
    applied first; every search joins back to `shop_product`, whose policies still decide
    which products are seen.
    """

    product = models.OneToOneField(
        Product, on_delete=models.CASCADE, primary_key=True, related_name="search"
    )
    document = SearchVectorField()

    class Meta:
        indexes = [GinIndex(fields=["document"], name="productsearch_document")]

    def __str__(self) -> str:
        return f"search document of product {self.product_id}"


class SearchWord(models.Model):
    """A word that occurs in some product name: the vocabulary a misspelt search is corrected
    against (PostgreSQL's triggers add the words of every new or renamed product)."""

    word = models.CharField(max_length=60, primary_key=True)

    def __str__(self) -> str:
        return self.word
