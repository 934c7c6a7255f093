"""Cart input. Only ids and quantities are read: prices always come from the database."""

from django import forms

# A sanity bound well above any real stock level; the service checks the real stock.
MAX_QUANTITY = 10_000

QUANTITY_ERRORS = {
    "required": "Enter a quantity.",
    "invalid": "Quantity must be a whole number.",
    "min_value": "Quantity must be at least 1.",
    "max_value": "Quantity is too large.",
}


class QuantityForm(forms.Form):
    quantity = forms.IntegerField(
        min_value=1,
        max_value=MAX_QUANTITY,
        error_messages=QUANTITY_ERRORS,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 1}),
    )

    def first_error(self) -> str:
        for errors in self.errors.values():
            return str(errors[0])
        return "Please check your input."


class AddToCartForm(QuantityForm):
    product_id = forms.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        error_messages={
            "required": "This product is not available.",
            "invalid": "This product is not available.",
            "min_value": "This product is not available.",
            "max_value": "This product is not available.",
        },
        widget=forms.HiddenInput,
    )
    quantity = forms.IntegerField(
        min_value=1,
        max_value=MAX_QUANTITY,
        initial=1,
        error_messages=QUANTITY_ERRORS,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 1}),
    )

    field_order = ["product_id", "quantity"]
