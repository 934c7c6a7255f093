"""Checkout input: the shipping address choice and the card form.

The card form never renders a submitted card number or CVC back into the page.
"""

import re
from typing import Any, ClassVar, cast

from django import forms
from django.utils import translation
from django.utils.safestring import SafeString

from accounts import forms as account_forms
from accounts.models import Address
from shop.gateways import CardInvalid, CardToken, PaymentGateway

NEW_ADDRESS = "new"
EXPIRY_RE = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*$")


class AddressChoiceForm(forms.Form):
    address = forms.ChoiceField(
        label="Ship to",
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose a shipping address.",
            "invalid_choice": "Choose one of your saved addresses or enter a new one.",
        },
    )

    def __init__(self, *args, addresses: list[Address], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.addresses = {str(address.pk): address for address in addresses}
        cast(forms.ChoiceField, self.fields["address"]).choices = [
            (pk, ", ".join(address.lines)) for pk, address in self.addresses.items()
        ] + [(NEW_ADDRESS, "A new address")]

    def chosen_address(self) -> Address | None:
        return self.addresses.get(self.cleaned_data["address"])


class CountrySelect(forms.Select):
    """The country select, rendered once per (language, name, selected country, attributes)
    and then reused: its ~250 options cost a template render each, most of the address
    step's time. Only a country in the list (or none) is kept, so what a visitor submits
    cannot grow the memo beyond about 250 entries per field."""

    _rendered: ClassVar[dict[tuple, SafeString]] = {}

    def render(self, name: str, value: Any, attrs: dict | None = None, renderer=None) -> SafeString:
        selected = "" if value is None else str(value)
        if selected and selected not in {str(code) for code, _ in self.choices}:
            return super().render(name, value, attrs, renderer)
        key = (
            translation.get_language(),
            name,
            selected,
            tuple(sorted(self.build_attrs(self.attrs, attrs).items())),
        )
        html = self._rendered.get(key)
        if html is None:
            html = self._rendered[key] = super().render(name, value, attrs, renderer)
        return html


class NewAddressForm(account_forms.AddressForm):
    make_default = None  # type: ignore[assignment]  # Django's way to drop an inherited field
    save_to_book = forms.BooleanField(label="Save to my address book", required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        country = cast(forms.ChoiceField, self.fields["country"])
        country.widget = CountrySelect(attrs=country.widget.attrs)
        country.widget.choices = country.choices


class NoEchoInput(forms.TextInput):
    """A text input that never sends a submitted value back to the browser."""

    def get_context(self, name, value, attrs):
        return super().get_context(name, None, attrs)


class CardForm(forms.Form):
    # The total the review page showed (and the button named): the order is refused, rather
    # than charged differently, if prices moved since. Optional for clients without it.
    reviewed_total = forms.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, required=False, widget=forms.HiddenInput
    )
    card_number = forms.CharField(
        label="Card number",
        max_length=23,
        widget=NoEchoInput(
            attrs={"autocomplete": "cc-number", "inputmode": "numeric", "spellcheck": "false"}
        ),
        error_messages={"required": "Enter your card number."},
    )
    expiry = forms.CharField(
        label="Expiry (MM/YY)",
        max_length=7,
        widget=forms.TextInput(
            attrs={"autocomplete": "cc-exp", "inputmode": "numeric", "placeholder": "MM/YY"}
        ),
        error_messages={"required": "Enter the expiry date as MM/YY."},
    )
    cvc = forms.CharField(
        label="CVC",
        max_length=4,
        widget=NoEchoInput(attrs={"autocomplete": "cc-csc", "inputmode": "numeric"}),
        error_messages={"required": "Enter the security code (CVC)."},
    )

    def clean_card_number(self) -> str:
        number = re.sub(r"[\s-]", "", self.cleaned_data["card_number"])
        if not number.isdigit():
            raise forms.ValidationError("Enter a valid card number.")
        return number

    def clean_expiry(self) -> tuple[int, int]:
        match = EXPIRY_RE.match(self.cleaned_data["expiry"])
        if not match or not 1 <= int(match.group(1)) <= 12:
            raise forms.ValidationError("Enter the expiry date as MM/YY.")
        return int(match.group(1)), int(match.group(2))

    def clean_cvc(self) -> str:
        cvc = self.cleaned_data["cvc"].strip()
        if not cvc.isdigit():
            raise forms.ValidationError("Enter the 3-digit security code (CVC).")
        return cvc

    def tokenize(self, *, gateway: PaymentGateway) -> CardToken | None:
        """Exchange the validated card for a gateway token; on refusal, a form error."""
        month, year = self.cleaned_data["expiry"]
        try:
            return gateway.tokenize_card(
                number=self.cleaned_data["card_number"],
                exp_month=month,
                exp_year=year,
                cvc=self.cleaned_data["cvc"],
            )
        except CardInvalid as exc:
            field = {"number": "card_number", "expiry": "expiry", "cvc": "cvc"}.get(exc.field or "")
            self.add_error(field, exc.message)
            return None
