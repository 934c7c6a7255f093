from decimal import Decimal

import pytest
from django.template import Context, Template

from shop.templatetags.money import money


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("19.99"), "€19.99"),
        (Decimal("3.5"), "€3.50"),
        (Decimal("0"), "€0.00"),
        (Decimal("1234.5"), "€1,234.50"),
        (Decimal("0.005"), "€0.01"),
        (Decimal("-5"), "-€5.00"),
        (7, "€7.00"),
        ("12.30", "€12.30"),
        (0.1, "€0.10"),
    ],
)
def test_formats_amounts_with_two_decimals_and_euro_sign(value, expected):
    assert money(value) == expected


@pytest.mark.parametrize("value", [None, "", "abc", "NaN", "Infinity"])
def test_renders_nothing_for_what_is_not_an_amount(value):
    assert money(value) == ""


def test_is_usable_from_templates():
    rendered = Template("{% load money %}{{ price|money }}").render(
        Context({"price": Decimal("250.00")})
    )

    assert rendered == "€250.00"
