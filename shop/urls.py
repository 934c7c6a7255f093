from django.urls import path

from shop.views import catalogue

app_name = "shop"

urlpatterns = [
    path("", catalogue.home, name="home"),
    path("products/", catalogue.home, name="product_list"),
    path("c/<slug:slug>/", catalogue.home, name="category"),
    path("p/<slug:slug>/", catalogue.home, name="product"),
    path("cart/", catalogue.home, name="cart"),
    path("orders/", catalogue.home, name="order_list"),
    path("orders/<int:pk>/", catalogue.home, name="order_detail"),
]
