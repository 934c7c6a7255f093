"""What happens when: every domain event and the handlers it is delivered to, in order.

Handlers are idempotent (a redelivery must not email or charge twice); each enqueues a
task or publishes to a Channels group, nothing more. The dispatcher runs them in the order
listed here (live pages first: they are what someone is watching) and records each one it
finished, so a redelivery skips it; a failing handler does not stop the others (only it is
retried).

Until a service below records its event, its reactions still run the old way (on_commit
in the service); when it starts recording, those on_commit calls go.

Which service records which event (aggregate: the order for every order event):
    shop.services.checkout.place_order          OrderPlaced
    shop.services.payments (captured charge)    PaymentCaptured
    shop.services.payments (failed charge)      PaymentFailed
    shop.services.fulfilment.ship_vendor_lines  OrderShipped
    shop.services.orders.cancel_order           OrderCancelled
    shop.services.refunds (refund succeeded)    RefundIssued
    accounts.services.register_user             UserRegistered (aggregate: the user)
    backoffice.services.onboarding (approval)   VendorApproved (aggregate: the vendor)
"""

HANDLERS: dict[str, list[str]] = {
    "OrderPlaced": [
        "shop.handlers.publish_order_status",
        "backoffice.handlers.publish_vendor_order",
    ],
    "PaymentCaptured": [
        "shop.handlers.publish_order_status",
        "backoffice.handlers.publish_vendor_order",
        "shop.handlers.send_order_emails",
    ],
    "PaymentFailed": [
        "shop.handlers.publish_order_status",
        "backoffice.handlers.publish_vendor_order",
        "shop.handlers.send_payment_failed_email",
    ],
    "OrderShipped": [
        "shop.handlers.publish_order_status",
        "backoffice.handlers.publish_vendor_order",
        "shop.handlers.send_shipment_email",
    ],
    "OrderCancelled": [
        "shop.handlers.publish_order_status",
        "backoffice.handlers.publish_vendor_order",
    ],
    "RefundIssued": [
        "shop.handlers.publish_order_status",
    ],
    "UserRegistered": [
        "accounts.handlers.send_verification_email",
    ],
    "VendorApproved": [],
    "EmailSent": [],
}
