from shop.models.cart import Cart, CartItem
from shop.models.catalogue import Category, Picture, Product, ProductSearch, SearchWord
from shop.models.orders import LineStatus, Order, OrderLine, OrderStatus, Shipment
from shop.models.payments import Payment, PaymentStatus, Refund, RefundStatus
from shop.models.reports import ReportJob, ReportKind, ReportStatus
from shop.models.stock import StockAdjustment, StockReason
from shop.models.vendors import Vendor, VendorInvitation, VendorMembership, VendorStatus

__all__ = [
    "Cart",
    "CartItem",
    "Category",
    "LineStatus",
    "Order",
    "OrderLine",
    "OrderStatus",
    "Payment",
    "PaymentStatus",
    "Picture",
    "Product",
    "ProductSearch",
    "Refund",
    "RefundStatus",
    "ReportJob",
    "ReportKind",
    "ReportStatus",
    "SearchWord",
    "Shipment",
    "StockAdjustment",
    "StockReason",
    "Vendor",
    "VendorInvitation",
    "VendorMembership",
    "VendorStatus",
]
