"""Account forms: every input is validated here before a service sees it."""

import re
from functools import partial

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import password_validation
from django.core.cache import cache
from django.db import transaction
from django_countries import countries

from accounts import services as account_services
from accounts import tasks
from accounts.models import Address, User
from project.audit import services as audit

LOGIN_FAILED_MESSAGE = "Email or password is incorrect."
PHONE_RE = re.compile(r"^\+?[0-9 ()./-]{5,30}$")
# At most this many reset emails per account per hour; further requests look the same.
RESET_EMAILS_PER_HOUR = 5


def _clean_phone(value: str) -> str:
    value = value.strip()
    if value and not PHONE_RE.match(value):
        raise forms.ValidationError(
            "Enter a phone number using digits, spaces and an optional leading +."
        )
    return value


class LoginForm(forms.Form):
    email = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class RegisterForm(forms.Form):
    email = forms.EmailField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    full_name = forms.CharField(
        label="Full name", max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Confirm password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Enter the same password again.",
    )

    def clean_full_name(self) -> str:
        name = self.cleaned_data["full_name"].strip()
        if not name:
            raise forms.ValidationError("Enter your name.")
        return name

    def clean(self) -> dict:
        super().clean()
        cleaned = self.cleaned_data
        password1 = cleaned.get("password1")
        password2 = cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords do not match.")
        elif password1:
            candidate = User(email=cleaned.get("email", ""), full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(password1, candidate)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class ProfileForm(forms.Form):
    full_name = forms.CharField(
        label="Full name", max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    phone = forms.CharField(
        label="Phone",
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "type": "tel"}),
    )

    def clean_full_name(self) -> str:
        name = self.cleaned_data["full_name"].strip()
        if not name:
            raise forms.ValidationError("Enter your name.")
        return name

    def clean_phone(self) -> str:
        return _clean_phone(self.cleaned_data["phone"])


def _country_choices() -> list[tuple[str, str]]:
    return [("", "Choose a country"), *countries]


class CountryField(forms.ChoiceField):
    """A select of country names (django-countries) whose value, stored, is the ISO 3166-1
    alpha-2 code in capitals."""

    def __init__(self, **kwargs) -> None:
        super().__init__(
            choices=_country_choices,
            widget=forms.Select(attrs={"autocomplete": "country"}),
            error_messages={
                "required": "Choose a country.",
                "invalid_choice": "Choose a country from the list.",
            },
            **kwargs,
        )

    def to_python(self, value) -> str:
        return super().to_python(value).strip().upper()


class AddressForm(forms.ModelForm):
    country = CountryField(label="Country")
    make_default = forms.BooleanField(label="Use as my default address", required=False)

    class Meta:
        model = Address
        fields = ["full_name", "line1", "line2", "city", "postal_code", "country", "phone"]
        labels = {
            "full_name": "Full name",
            "line1": "Address line 1",
            "line2": "Address line 2 (optional)",
            "postal_code": "Postal code",
            "phone": "Phone (optional)",
        }
        widgets = {
            "full_name": forms.TextInput(attrs={"autocomplete": "name"}),
            "line1": forms.TextInput(attrs={"autocomplete": "address-line1"}),
            "line2": forms.TextInput(attrs={"autocomplete": "address-line2"}),
            "city": forms.TextInput(attrs={"autocomplete": "address-level2"}),
            "postal_code": forms.TextInput(attrs={"autocomplete": "postal-code"}),
            "phone": forms.TextInput(attrs={"autocomplete": "tel", "type": "tel"}),
        }

    def clean_phone(self) -> str:
        return _clean_phone(self.cleaned_data["phone"])

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {name: data[name] for name in self.Meta.fields} | {
            "make_default": data["make_default"]
        }


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset form (silent about unknown addresses); the email goes out as a task."""

    base_url: str | None = None

    def save(self, *args, **kwargs) -> None:
        request = kwargs.get("request")
        self.base_url = request.build_absolute_uri("/") if request is not None else None
        with transaction.atomic():
            super().save(*args, **kwargs)
            # Audited whether or not the address has an account (without storing the address).
            account = next(iter(self.get_users(self.cleaned_data["email"])), None)
            audit.record(
                "auth.password_reset_requested",
                target=account,
                metadata={"account_exists": account is not None},
            )

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ) -> None:
        user = context["user"]
        throttle_key = f"password-reset-sent:{user.pk}"
        cache.add(throttle_key, 0, timeout=3600)
        if cache.incr(throttle_key) > RESET_EMAILS_PER_HOUR:
            return
        transaction.on_commit(
            partial(
                # The link's token is made by the task: task records (readable by staff,
                # kept in the database) never hold a secret that resets a password.
                tasks.send_password_reset_email.enqueue,
                user_id=user.pk,
                base_url=self.base_url,
            )
        )


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's form; the new password is saved (and audited) by accounts.services."""

    def save(self, commit: bool = True) -> User:
        return account_services.set_password(
            user=self.user, password=self.cleaned_data["new_password1"], via_reset=False
        )


class SetPasswordForm(auth_forms.SetPasswordForm):
    """The reset link's form; the new password is saved (and audited) by accounts.services."""

    def save(self, commit: bool = True) -> User:
        return account_services.set_password(
            user=self.user, password=self.cleaned_data["new_password1"], via_reset=True
        )
