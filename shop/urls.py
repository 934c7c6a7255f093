from django.urls import path

from shop.views import cart, catalogue, checkout, orders, webhooks

app_name = "shop"

urlpatterns = [
    path("", catalogue.home, name="home"),
    path("products/", catalogue.product_list, name="product_list"),
    path("c/<slug:slug>/", catalogue.category_detail, name="category"),
    path("p/<slug:slug>/", catalogue.product_detail, name="product"),
    path("cart/", cart.cart_detail, name="cart"),
    path("cart/add/", cart.add_to_cart, name="cart_add"),
    path("cart/items/<int:product_id>/", cart.update_cart_item, name="cart_update"),
    path("cart/items/<int:product_id>/remove/", cart.remove_cart_item, name="cart_remove"),
    path("checkout/", checkout.checkout_address, name="checkout"),
    path("checkout/review/", checkout.checkout_review, name="checkout_review"),
    path("orders/", orders.order_list, name="order_list"),
    path("orders/<int:pk>/", orders.order_detail, name="order_detail"),
    path("orders/<int:pk>/pay/", orders.retry_payment, name="order_pay"),
    path("webhooks/stripe/", webhooks.stripe_webhook, name="stripe_webhook"),
]
