"""Forms of the product screens: every value a vendor sends is validated here."""

from decimal import Decimal
from pathlib import Path
from typing import cast

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat

from backoffice.selectors import products as product_selectors
from shop.models import Category
from shop.services import images

IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "webp"}
IMAGE_HELP = "JPEG, PNG or WebP, at most {limit} and {pixels:g} megapixels."

SORT_CHOICES = [
    ("newest", "Newest"),
    ("name", "Name"),
    ("price_asc", "Price: low to high"),
    ("price_desc", "Price: high to low"),
    ("stock_asc", "Stock: lowest first"),
]
ACTIVE_CHOICES = [("", "Active and inactive"), ("yes", "Active"), ("no", "Inactive")]
STOCK_CHOICES = [
    ("", "Any stock"),
    ("in", "In stock"),
    ("low", "Low stock"),
    ("out", "Out of stock"),
]
BULK_ACTIONS = [("activate", "Activate"), ("deactivate", "Deactivate")]


def image_limit() -> int:
    return getattr(settings, "PRODUCT_IMAGE_MAX_BYTES", 2_097_152)


def price_field(label: str = "Price (€)") -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        min_value=Decimal("0.01"),
        max_digits=10,
        decimal_places=2,
        error_messages={
            "required": "Enter a price.",
            "invalid": "Enter the price as a number, e.g. 12.50.",
            "min_value": "The price must be at least €0.01.",
            "max_digits": "The price is too large.",
            "max_whole_digits": "The price is too large.",
            "max_decimal_places": "The price can have at most 2 decimal places.",
        },
        widget=forms.NumberInput(attrs={"min": "0.01", "step": "0.01", "inputmode": "decimal"}),
    )


def stock_field(label: str = "Stock") -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        min_value=0,
        max_value=2_147_483_647,
        error_messages={
            "required": "Enter the stock.",
            "invalid": "Enter the stock as a whole number.",
            "min_value": "Stock cannot be negative.",
            "max_value": "That stock is too large.",
        },
        widget=forms.NumberInput(attrs={"min": "0", "step": "1", "inputmode": "numeric"}),
    )


class ProductImageField(forms.ImageField):
    """An image checked by content, not by name: JPEG, PNG or WebP, within the size and pixel
    limits; cleaned to its re-encoded pixels (shop.services.images)."""

    default_error_messages = {
        "invalid_image": "This file is not an image we accept. Upload a JPEG, PNG or WebP image.",
    }

    def to_python(self, data):
        if data in self.empty_values:
            return None
        limit = image_limit()
        if data.size > limit:
            raise ValidationError(
                f"The image is {filesizeformat(data.size)}; the largest allowed is "
                f"{filesizeformat(limit)}.",
                code="too_large",
            )
        extension = Path(data.name or "").suffix.lower().lstrip(".")
        if extension not in IMAGE_EXTENSIONS:
            raise ValidationError(
                "Upload a file ending in .jpg, .jpeg, .png or .webp.", code="bad_extension"
            )
        forms.FileField.to_python(self, data)  # name and emptiness checks
        # Decoded, size-checked and re-encoded from its pixels alone (no metadata, nothing
        # appended), under a name whose extension matches the content.
        try:
            return images.sanitise_product_image(data, name=data.name)
        except images.InvalidImage as exc:
            raise ValidationError(exc.message, code=exc.code) from None


class ProductForm(forms.Form):
    """Create (with an initial stock) or edit (stock changes on the stock page) a product."""

    name = forms.CharField(
        label="Name",
        max_length=200,
        error_messages={
            "required": "Enter the product's name.",
            "max_length": "The name can be at most 200 characters.",
        },
    )
    category = forms.ModelChoiceField(
        label="Category",
        queryset=Category.objects.none(),
        empty_label="Choose a category",
        error_messages={
            "required": "Choose a category.",
            "invalid_choice": "That category does not exist.",
        },
    )
    price = price_field()
    stock = stock_field("Stock on hand")
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    is_active = forms.BooleanField(
        label="Active (visible in the shop)", required=False, initial=True
    )
    image = ProductImageField(label="Image", required=False)

    def __init__(self, *args, editing: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        category_field = cast(forms.ModelChoiceField, self.fields["category"])
        category_field.queryset = product_selectors.list_categories()
        self.fields["image"].help_text = IMAGE_HELP.format(
            limit=filesizeformat(image_limit()), pixels=images.max_pixels() / 1_000_000
        )
        if editing:
            del self.fields["stock"]


class ProductFilterForm(forms.Form):
    """Search, filters and sort of the vendor's product list; an invalid value is ignored."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name or slug"}),
    )
    category = forms.ChoiceField(label="Category", required=False)
    active = forms.ChoiceField(label="Status", required=False, choices=ACTIVE_CHOICES)
    stock = forms.ChoiceField(label="Stock", required=False, choices=STOCK_CHOICES)
    sort = forms.ChoiceField(label="Sort by", required=False, choices=SORT_CHOICES)

    def __init__(self, data, *, categories: list[Category], **kwargs) -> None:
        super().__init__(data, **kwargs)
        self.categories = {category.slug: category for category in categories}
        cast(forms.ChoiceField, self.fields["category"]).choices = [("", "All categories")] + [
            (category.slug, category.name) for category in categories
        ]

    def filters(self) -> dict:
        """Keyword arguments for `list_vendor_products`, leaving out every invalid value."""
        self.is_valid()
        data = self.cleaned_data
        return {
            "q": data.get("q") or "",
            "category": self.categories.get(data.get("category") or ""),
            "active": {"yes": True, "no": False}.get(data.get("active") or ""),
            "stock_state": data.get("stock") or "",
            "sort": data.get("sort") or product_selectors.DEFAULT_SORT,
        }


class InlineEditForm(forms.Form):
    """Price and stock edited in a row of the list; `stock_seen` is the stock shown then."""

    price = price_field()
    stock = stock_field()
    stock_seen = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def first_error(self) -> str:
        return str(next(iter(self.errors.values()))[0])


class IdListField(forms.Field):
    """Several ids under one name (checkboxes); junk values are an error, not a guess."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "required": "Select at least one product.",
        "invalid": "The selection was not understood; select the products again.",
    }

    def to_python(self, value) -> list[int]:
        if not value:
            return []
        try:
            return sorted({int(item) for item in value})
        except (TypeError, ValueError):
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class BulkActionForm(forms.Form):
    action = forms.ChoiceField(
        label="With the selected products",
        choices=BULK_ACTIONS,
        error_messages={
            "required": "Choose what to do with the selected products.",
            "invalid_choice": "Choose activate or deactivate.",
        },
    )
    products = IdListField()

    def first_error(self) -> str:
        return str(next(iter(self.errors.values()))[0])


class ProductImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        error_messages={"required": "Choose a CSV file to upload.", "empty": "The file is empty."},
        help_text="UTF-8, header slug,name,category,price,stock,active,description; "
        "at most 1 MB and 5,000 rows.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
