"""The application to sell on Bazaar."""

import re

from django import forms

PHONE_RE = re.compile(r"^\+?[0-9 ()./-]{5,30}$")
IBAN_RE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")


def iban_is_valid(iban: str) -> bool:
    """ISO 13616: country code, check digits, then the mod-97 check over the rearranged digits."""
    if not IBAN_RE.match(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(char, 36)) for char in rearranged)
    return int(digits) % 97 == 1


class ApplicationForm(forms.Form):
    name = forms.CharField(label="Shop name", max_length=120)
    description = forms.CharField(
        label="What you sell",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Shoppers see this on your shop's page.",
    )
    contact_email = forms.EmailField(label="Contact email", max_length=254)
    contact_phone = forms.CharField(label="Contact phone", max_length=32, required=False)
    account_holder = forms.CharField(label="Account holder", max_length=80)
    iban = forms.CharField(
        label="IBAN",
        max_length=42,
        help_text="Where your payouts go, e.g. DE89 3704 0044 0532 0130 00",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not re.search(r"[A-Za-z0-9]", name):
            raise forms.ValidationError("Use at least one letter or digit in the shop name.")
        return name

    def clean_contact_phone(self) -> str:
        phone = self.cleaned_data["contact_phone"].strip()
        if phone and not PHONE_RE.match(phone):
            raise forms.ValidationError(
                "Enter a phone number using digits, spaces and an optional leading +."
            )
        return phone

    def clean_iban(self) -> str:
        iban = re.sub(r"\s+", "", self.cleaned_data["iban"]).upper()
        if not iban_is_valid(iban):
            raise forms.ValidationError("Enter a valid IBAN, e.g. DE89 3704 0044 0532 0130 00.")
        return iban

    @property
    def payout_details(self) -> str:
        """Stored as one line on the vendor: "<holder>, IBAN <iban>"."""
        return f"{self.cleaned_data['account_holder'].strip()}, IBAN {self.cleaned_data['iban']}"
