"""`{{ value|money }}`: a Decimal amount as a euro price, e.g. "€19.99"."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template

register = template.Library()

CURRENCY_SYMBOL = "€"
CENT = Decimal("0.01")


@register.filter
def money(value) -> str:
    """Format an amount with two decimals and the currency symbol; never goes through float.

    Thousands are separated by commas ("€1,234.50"); a negative amount reads "-€5.00".
    Anything that is not a number renders as an empty string.
    """
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        # A float reaching a template is a bug upstream; keep its printed form, not its binary one.
        value = repr(value)
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return ""
    if not amount.is_finite():
        return ""
    amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    return f"{sign}{CURRENCY_SYMBOL}{abs(amount):,.2f}"
