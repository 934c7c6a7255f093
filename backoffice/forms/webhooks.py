"""Adding a webhook endpoint."""

from django import forms

from webhooks.models import SUBSCRIBABLE


class EndpointForm(forms.Form):
    url = forms.CharField(
        label="Endpoint URL",
        max_length=500,
        help_text="Where Bazaar POSTs the events, e.g. https://erp.example.com/bazaar/webhooks",
        widget=forms.URLInput(attrs={"placeholder": "https://", "autocomplete": "off"}),
    )
    events = forms.MultipleChoiceField(
        label="Events",
        choices=[(event.value, event.label) for event in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
        initial=[event.value for event in SUBSCRIBABLE],
    )
    description = forms.CharField(label="Description (optional)", max_length=200, required=False)
