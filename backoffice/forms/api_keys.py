"""Making an API key for one of the shop's integrations."""

from django import forms

from api.models import ApiKey, ApiKeyScope


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=ApiKey._meta.get_field("name").max_length,
        help_text="What uses it, e.g. “Warehouse sync”.",
    )
    scope = forms.ChoiceField(
        label="Access",
        choices=ApiKeyScope.choices,
        initial=ApiKeyScope.READ,
        help_text="Read only: products, stock and orders. Read and write: changes them too.",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the key a name.")
        return name
