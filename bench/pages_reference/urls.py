"""The product's URLconf plus the two references under /__bench__/."""

from django.urls import include, path

from pages_reference import views

urlpatterns = [
    path("__bench__/products/", views.product_names, name="bench_products"),
    path("__bench__/write/", views.write_row, name="bench_write"),
    path("", include("project.urls")),
]
