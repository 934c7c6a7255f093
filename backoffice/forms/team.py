"""Inviting someone to a vendor's team."""

from django import forms

from shop.models import VendorMembership


class InvitationForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)
    role = forms.ChoiceField(
        label="Role", choices=VendorMembership.Role.choices, initial=VendorMembership.Role.STAFF
    )
