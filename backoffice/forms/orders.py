"""Filtering a vendor's orders, shipping its part, cancelling a line."""

from django import forms

from shop.services import fulfilment

FULFILMENT_CHOICES = [
    ("", "Any state"),
    ("to_ship", "To ship"),
    ("shipped", "Shipped"),
    ("cancelled", "Cancelled"),
]


class OrderFilterForm(forms.Form):
    status = forms.ChoiceField(label="State", choices=FULFILMENT_CHOICES, required=False)
    date_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict:
        super().clean()
        cleaned = self.cleaned_data
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_from > date_to:
            raise forms.ValidationError("The start date must not be after the end date.")
        return cleaned

    def filters(self) -> dict:
        """The valid filters only: one bad field never hides the whole list."""
        data = getattr(self, "cleaned_data", {})
        return {
            "status": data.get("status") or None,
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
        }


class ShipForm(forms.Form):
    carrier = forms.CharField(
        label="Carrier", max_length=fulfilment.CARRIER_MAX_LENGTH, help_text="e.g. DHL, UPS"
    )
    tracking_number = forms.CharField(
        label="Tracking number", max_length=fulfilment.TRACKING_MAX_LENGTH
    )


class CancelLineForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=fulfilment.REASON_MAX_LENGTH,
        help_text="The shopper is told this reason.",
    )
