from django import forms

from shop.services import stock as stock_services


class StockAdjustForm(forms.Form):
    """A signed change with a reason: +12 received, -2 damaged, ±n correction."""

    change = forms.IntegerField(
        label="Change",
        min_value=-1_000_000,
        max_value=1_000_000,
        help_text="Positive adds stock, negative removes it, e.g. 12 or -2.",
        error_messages={
            "required": "Enter how many units to add or remove.",
            "invalid": "Enter a whole number, e.g. 12 or -2.",
            "min_value": "That change is too large.",
            "max_value": "That change is too large.",
        },
        widget=forms.NumberInput(attrs={"step": "1", "inputmode": "numeric"}),
    )
    reason = forms.ChoiceField(
        label="Reason",
        choices=[(reason.value, reason.label) for reason in stock_services.MANUAL_REASONS],
        error_messages={
            "required": "Choose a reason.",
            "invalid_choice": "Choose received, damaged or correction.",
        },
    )
    note = forms.CharField(
        label="Note", required=False, max_length=200, help_text="Optional, e.g. a delivery number."
    )

    def clean_change(self) -> int:
        change = self.cleaned_data["change"]
        if change == 0:
            raise forms.ValidationError("Enter a change other than 0.", code="zero")
        return change
