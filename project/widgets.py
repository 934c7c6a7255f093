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
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe


def _attrs(attrs: dict) -> str:
    # django/forms/widgets/attrs.html: False leaves the attribute out, True prints its name.
    return "".join(
        f" {conditional_escape(name)}"
        if value is True
        else f' {conditional_escape(name)}="{conditional_escape(str(value))}"'
        for name, value in attrs.items()
        if value is not False
    )


class Select(forms.Select):
    """`forms.Select`, printed in Python (django/forms/widgets/select.html)."""

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        parts = [format_html('<select name="{}"', widget["name"]), _attrs(widget["attrs"]), ">"]
        for group_name, options, _index in widget["optgroups"]:
            if group_name:
                parts.append(format_html('\n  <optgroup label="{}">', group_name))
            for option in options:
                parts.append(
                    format_html('\n  <option value="{}"', str(option["value"]))
                    + _attrs(option["attrs"])
                    # The option template's file ends with a newline, printed after each.
                    + format_html(">{}</option>\n", option["label"])
                )
            if group_name:
                parts.append("\n  </optgroup>")
        parts.append("\n</select>")
        return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped


class _PrintedInput:
    """django/forms/widgets/input.html, which text.html, number.html and checkbox.html include."""

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]  # type: ignore[attr-defined]
        html = format_html('<input type="{}" name="{}"', widget["type"], widget["name"])
        if widget["value"] is not None:
            html += format_html(' value="{}"', str(widget["value"]))
        return mark_safe(f"{html}{_attrs(widget['attrs'])}>")  # noqa: S308 - escaped above


class TextInput(_PrintedInput, forms.TextInput):
    pass


class NumberInput(_PrintedInput, forms.NumberInput):
    pass


class CheckboxInput(_PrintedInput, forms.CheckboxInput):
    pass
