"""project.widgets prints what Django's widget templates print, byte for byte."""

from decimal import Decimal

import pytest
from django import forms

from project import widgets

CHOICES = [
    ("", "All shops"),
    ("oak-and-iron", "Oak & Iron"),
    ("<b>", 'Quote " and <tag>'),
    ("Lamps", [("lamp-1", "Lamp one"), ("lamp-2", "Lamp two")]),
    (3, "A number"),
]


class Both(forms.Form):
    """Each field twice: `django_<name>` with Django's widget, `ours_<name>` with ours."""

    django_menu = forms.ChoiceField(
        choices=CHOICES, required=False, widget=forms.Select(attrs={"data-x": "1"})
    )
    ours_menu = forms.ChoiceField(
        choices=CHOICES, required=False, widget=widgets.Select(attrs={"data-x": "1"})
    )
    django_text = forms.CharField(
        max_length=5, required=False, widget=forms.TextInput(attrs={"type": "search"})
    )
    ours_text = forms.CharField(
        max_length=5, required=False, widget=widgets.TextInput(attrs={"type": "search"})
    )
    django_number = forms.DecimalField(
        min_value=Decimal("0"), required=False, widget=forms.NumberInput(attrs={"step": "0.01"})
    )
    ours_number = forms.DecimalField(
        min_value=Decimal("0"), required=False, widget=widgets.NumberInput(attrs={"step": "0.01"})
    )
    django_box = forms.BooleanField(required=False, widget=forms.CheckboxInput)
    ours_box = forms.BooleanField(required=False, widget=widgets.CheckboxInput)


def _both(data: dict[str, str], name: str) -> tuple[str, str]:
    form = Both(
        {f"{side}_{key}": value for key, value in data.items() for side in ("django", "ours")}
    )
    form.is_valid()
    return str(form[f"django_{name}"]), str(form[f"ours_{name}"]).replace("ours_", "django_")


@pytest.mark.parametrize(
    ("data", "name"),
    [
        ({"menu": "oak-and-iron"}, "menu"),
        ({"menu": "nobody"}, "menu"),
        ({}, "menu"),
        ({"text": 'a "b" <c>'}, "text"),
        ({"text": "far too long"}, "text"),
        ({}, "text"),
        ({"number": "12.50"}, "number"),
        ({"number": "-1"}, "number"),
        ({"number": "abc"}, "number"),
        ({"box": "on"}, "box"),
        ({}, "box"),
    ],
)
def test_prints_what_django_prints(data, name):
    django, ours = _both(data, name)

    assert ours == django


def test_a_menu_shows_its_groups_and_the_chosen_option():
    django, ours = _both({"menu": "lamp-2"}, "menu")

    assert '<optgroup label="Lamps">' in ours
    assert '<option value="lamp-2" selected>Lamp two</option>' in ours
    assert '<option value="oak-and-iron">Oak &amp; Iron</option>' in ours


def test_an_invalid_value_is_marked_invalid():
    django, ours = _both({"number": "abc"}, "number")

    assert 'aria-invalid="true"' in ours
    assert 'value="abc"' in ours
