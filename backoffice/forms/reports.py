import datetime

from django import forms
from django.utils import timezone

from shop.models import ReportKind

MAX_PERIOD_DAYS = 366
VENDOR_KINDS = [
    (ReportKind.VENDOR_SALES_BY_DAY.value, ReportKind.VENDOR_SALES_BY_DAY.label),
    (ReportKind.VENDOR_SALES_BY_PRODUCT.value, ReportKind.VENDOR_SALES_BY_PRODUCT.label),
]


class ReportForm(forms.Form):
    """A vendor's sales report: a kind and a period of at most 366 days, not in the future."""

    kind = forms.ChoiceField(
        label="Report",
        choices=VENDOR_KINDS,
        error_messages={"required": "Choose a report.", "invalid_choice": "Choose a report."},
    )
    date_from = forms.DateField(
        label="From",
        error_messages={
            "required": "Enter the first day.",
            "invalid": "Enter a date like 2026-01-31.",
        },
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    date_to = forms.DateField(
        label="To",
        error_messages={
            "required": "Enter the last day.",
            "invalid": "Enter a date like 2026-01-31.",
        },
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def clean(self) -> dict:
        super().clean()
        cleaned = self.cleaned_data
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        today = timezone.localdate()
        if date_to is not None and date_to > today:
            self.add_error("date_to", "The period cannot end in the future.")
        if date_from is not None and date_from > today:
            self.add_error("date_from", "The period cannot start in the future.")
        if date_from is not None and date_to is not None:
            if date_from > date_to:
                self.add_error("date_to", "The last day cannot be before the first day.")
            elif (date_to - date_from).days + 1 > MAX_PERIOD_DAYS:
                self.add_error("date_to", f"The period can be at most {MAX_PERIOD_DAYS} days.")
        return cleaned

    @staticmethod
    def default_period() -> dict[str, datetime.date]:
        today = timezone.localdate()
        return {"date_from": today - datetime.timedelta(days=29), "date_to": today}
