from shop.models.cart import Cart, CartItem
from shop.models.catalogue import Category, Product
from shop.models.orders import Order, OrderLine, OrderStatus
from shop.models.payments import Payment, PaymentStatus
from shop.models.vendors import Vendor, VendorMembership, VendorStatus

__all__ = [
    "Cart",
    "CartItem",
    "Category",
    "Order",
    "OrderLine",
    "OrderStatus",
    "Payment",
    "PaymentStatus",
    "Product",
    "Vendor",
    "VendorMembership",
    "VendorStatus",
]
