# Test cases for bazaar.yml (`semgrep --test --config .semgrep/bazaar.yml .semgrep/`):
# each `ruleid:` line must be found, each `ok:` line must not.
# ruff: noqa
import csv
from functools import partial

from django.db.models.expressions import RawSQL
from django.shortcuts import redirect
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import csrf_exempt


def escaping(name, url):
    # ruleid: bazaar-mark-safe-non-literal
    a = mark_safe(f"<b>{name}</b>")
    # ok: bazaar-mark-safe-non-literal
    b = mark_safe("<br>")
    # ruleid: bazaar-format-html-preformatted
    c = format_html(f"<a href='{url}'>{name}</a>")
    # ok: bazaar-format-html-preformatted
    d = format_html("<a href='{}'>{}</a>", url, name)
    return a, b, c, d


def sql(cursor, Product, table, value):
    # ruleid: bazaar-raw-sql-formatting
    cursor.execute(f"SELECT * FROM shop_product WHERE name = '{value}'")
    # ruleid: bazaar-raw-sql-formatting
    cursor.execute("SELECT * FROM %s" % table)
    # ruleid: bazaar-raw-sql-formatting
    Product.objects.raw("SELECT * FROM shop_product WHERE slug = '{}'".format(value))
    # ruleid: bazaar-raw-sql-formatting
    Product.objects.annotate(x=RawSQL(f"SELECT {value}", []))
    # ruleid: bazaar-raw-sql-formatting
    Product.objects.extra(where=["name = %s"], params=[value])
    # ok: bazaar-raw-sql-formatting
    cursor.execute("SELECT * FROM shop_product WHERE name = %s", [value])


# ruleid: bazaar-csrf-exempt
@csrf_exempt
def hook(request):
    return None


def unsafe_next(request):
    target = request.GET.get("next", "/")
    # ruleid: bazaar-open-redirect
    return redirect(target)


def checked_next(request):
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    # ok: bazaar-open-redirect
    return redirect(target)


def named_redirect(request, report):
    # ok: bazaar-open-redirect
    return redirect("backoffice:report_detail", pk=report.pk)


def tasks(task, user, token, default_token_generator, transaction):
    # ruleid: bazaar-secret-in-task-arguments
    task.enqueue(user_id=user.pk, token=token)
    # ruleid: bazaar-secret-in-task-arguments
    transaction.on_commit(partial(task.enqueue, user_id=user.pk, uidb64="MQ", code="123456"))
    # ruleid: bazaar-token-made-before-enqueue
    task.enqueue(user.pk, default_token_generator.make_token(user))
    # ok: bazaar-secret-in-task-arguments
    task.enqueue(user_id=user.pk, idempotency_key="order-confirmation:1")


def spreadsheets(handle, rows):
    # ruleid: bazaar-csv-writer-outside-helper
    writer = csv.writer(handle)
    # ruleid: bazaar-csv-writer-outside-helper
    dict_writer = csv.DictWriter(handle, fieldnames=["a"])
    return writer, dict_writer
