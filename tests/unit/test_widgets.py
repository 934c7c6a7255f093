"""project.widgets prints what Django's widget templates print, byte for byte."""

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
    django = forms.ChoiceField(
        choices=CHOICES, required=False, widget=forms.Select(attrs={"data-x": "1"})
    )
    ours = forms.ChoiceField(
        choices=CHOICES, required=False, widget=widgets.Select(attrs={"data-x": "1"})
    )


def _as_django_would(form: Both) -> tuple[str, str]:
    ours = str(form["ours"]).replace('name="ours"', 'name="django"')
    ours = ours.replace('id="id_ours"', 'id="id_django"')
    ours = ours.replace('"id_ours_error"', '"id_django_error"')
    return str(form["django"]), ours


def test_prints_the_options_groups_and_attributes_as_django_does():
    django, ours = _as_django_would(Both({"django": "oak-and-iron", "ours": "oak-and-iron"}))

    assert ours == django
    assert '<option value="oak-and-iron" selected>Oak &amp; Iron</option>' in ours
    assert '<optgroup label="Lamps">' in ours


def test_marks_an_invalid_choice_as_django_does():
    form = Both({"django": "nobody", "ours": "nobody"})
    assert not form.is_valid()

    django, ours = _as_django_would(form)

    assert ours == django
    assert 'aria-invalid="true"' in ours
