"""The catalogue's filter form: every query parameter of the listing is validated here."""

from decimal import Decimal
from typing import cast

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

from project import widgets
from shop.models import Category, Vendor
from shop.selectors import catalogue as catalogue_selectors

SORT_CHOICES = [
    (catalogue_selectors.RELEVANCE, "Best match"),
    ("newest", "Newest"),
    ("price_asc", "Price: low to high"),
    ("price_desc", "Price: high to low"),
]


# Every price problem (a bound, or the range) is shown in one place beside the price fields.
PRICE_PROBLEMS_ID = "filter-price-problems"
PRICE_ERROR_KEYS = ("min_price", "max_price", NON_FIELD_ERRORS)


def _price_field(label: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=False,
        min_value=Decimal("0"),
        max_digits=10,
        decimal_places=2,
        error_messages={
            "invalid": f"{label} must be a number.",
            "min_value": f"{label} cannot be negative.",
            "max_digits": f"{label} is too large.",
            "max_whole_digits": f"{label} is too large.",
            "max_decimal_places": f"{label} can have at most 2 decimal places.",
        },
        widget=widgets.NumberInput(
            attrs={
                "min": "0",
                "step": "0.01",
                "inputmode": "decimal",
                "aria-describedby": PRICE_PROBLEMS_ID,
            }
        ),
    )


class ProductFilterForm(forms.Form):
    """Search, filters and sort for the product listing.

    The form is always bound to request.GET. An invalid value is reported and that one
    filter is ignored (see `filters()`); the rest of the listing still applies.
    """

    # The fields are printed in Python (project.widgets): through Django's widget templates
    # they cost more than the rest of the listing page's template.
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        error_messages={"max_length": "Search text can be at most 200 characters."},
        widget=widgets.TextInput(attrs={"type": "search", "placeholder": "Search products"}),
    )
    category = forms.ChoiceField(
        label="Category",
        required=False,
        widget=widgets.Select,
        error_messages={"invalid_choice": "That category does not exist."},
    )
    vendor = forms.ChoiceField(
        label="Shop",
        required=False,
        widget=widgets.Select,
        error_messages={"invalid_choice": "That shop does not exist."},
    )
    min_price = _price_field("Minimum price")
    max_price = _price_field("Maximum price")
    in_stock = forms.BooleanField(
        label="In stock only", required=False, widget=widgets.CheckboxInput
    )
    sort = forms.ChoiceField(
        label="Sort by",
        required=False,
        choices=SORT_CHOICES,
        error_messages={"invalid_choice": "Unknown sort order; showing the newest first."},
    )
    # Paginator.get_page copes with any value (missing, junk, out of range).
    page = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(
        self, data, *, categories: list[Category], vendors: list[Vendor], **kwargs
    ) -> None:
        super().__init__(data, **kwargs)
        self.categories = {category.slug: category for category in categories}
        self.vendors = {vendor.slug: vendor for vendor in vendors}
        cast(forms.ChoiceField, self.fields["category"]).choices = [("", "All categories")] + [
            (category.slug, category.name) for category in categories
        ]
        cast(forms.ChoiceField, self.fields["vendor"]).choices = [("", "All shops")] + [
            (vendor.slug, vendor.name) for vendor in vendors
        ]

    def clean(self) -> dict:
        super().clean()
        cleaned = self.cleaned_data
        low, high = cleaned.get("min_price"), cleaned.get("max_price")
        if low is not None and high is not None and low > high:
            # Neither bound can be trusted, so both are ignored.
            del cleaned["min_price"], cleaned["max_price"]
            raise forms.ValidationError(
                "Minimum price cannot be more than the maximum price.", code="price_range"
            )
        return cleaned

    def filters(self) -> dict:
        """Keyword arguments for `search_products`, leaving out every invalid value."""
        self.is_valid()
        data = self.cleaned_data
        return {
            "query": data.get("q") or "",
            "category": self.categories.get(data.get("category") or ""),
            "vendor": self.vendors.get(data.get("vendor") or ""),
            "min_price": data.get("min_price"),
            "max_price": data.get("max_price"),
            "in_stock": bool(data.get("in_stock")),
            # Best match unless another order is chosen: a search typed on the listing (whose
            # sort menu is submitted with it) is then ranked; without a search it is newest.
            "sort": data.get("sort") or catalogue_selectors.RELEVANCE,
        }

    def price_problems(self) -> list[str]:
        """What is wrong with the price range, shown beside the price fields."""
        return [str(error) for key in PRICE_ERROR_KEYS for error in self.errors.get(key, [])]

    def problems(self) -> list[tuple[str, str]]:
        """The other problems with the submitted filters: (element id, sentence) pairs.

        The id matches the `aria-describedby` Django puts on the invalid input.
        """
        problems = []
        for name, errors in self.errors.items():
            if name in PRICE_ERROR_KEYS:
                continue
            element_id = f"{self[name].auto_id}_error" if name in self.fields else ""
            problems.append((element_id, " ".join(str(error) for error in errors)))
        return problems
