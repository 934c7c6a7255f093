"""Form widgets that print their HTML in Python instead of through templates.

Django renders a `<select>` with one template include per option and another per option's
attributes, and an `<input>` through three nested templates: the catalogue's filter form (24
categories, 36 shops, four inputs) spent about 3.5 ms of CPU on every listing and search
request printing its fields. These widgets keep Django's context (`get_context`: the
attributes a bound field adds, such as `aria-invalid` and `aria-describedby` on an invalid
value) and print exactly what Django's templates print (tests/unit/test_widgets.py compares
the two).
"""

from django import forms
from django.utils.html import format_html
from django.utils.safestring import SafeString


def _attrs(attrs: dict) -> SafeString:
    # django/forms/widgets/attrs.html: False leaves the attribute out, True prints its name.
    html = SafeString()
    for name, value in attrs.items():
        if value is True:
            html += format_html(" {}", name)
        elif value is not False:
            html += format_html(' {}="{}"', name, str(value))
    return html


class Select(forms.Select):
    """`forms.Select`, printed in Python (django/forms/widgets/select.html)."""

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        html = format_html('<select name="{}"{}>', widget["name"], _attrs(widget["attrs"]))
        for group_name, options, _index in widget["optgroups"]:
            if group_name:
                html += format_html('\n  <optgroup label="{}">', group_name)
            for option in options:
                # The option template's file ends with a newline, printed after each.
                html += format_html(
                    '\n  <option value="{}"{}>{}</option>\n',
                    str(option["value"]),
                    _attrs(option["attrs"]),
                    option["label"],
                )
            if group_name:
                html += SafeString("\n  </optgroup>")
        return html + SafeString("\n</select>")


class _PrintedInput:
    """django/forms/widgets/input.html, which text.html, number.html and checkbox.html include."""

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]  # type: ignore[attr-defined]
        html = format_html('<input type="{}" name="{}"', widget["type"], widget["name"])
        if widget["value"] is not None:
            html += format_html(' value="{}"', str(widget["value"]))
        return html + format_html("{}>", _attrs(widget["attrs"]))


class TextInput(_PrintedInput, forms.TextInput):
    pass


class NumberInput(_PrintedInput, forms.NumberInput):
    pass


class CheckboxInput(_PrintedInput, forms.CheckboxInput):
    pass
