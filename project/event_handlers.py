"""What happens when: every domain event and the handlers it is delivered to, in order.

Handlers are idempotent (a redelivery must not email or charge twice); each enqueues a
task or publishes to a Channels group, nothing more. The dispatcher runs them in the order
listed here (live pages first: they are what someone is watching) and records each one it
finished, so a redelivery skips it; a failing handler does not stop the others (only it is
retried).

Which service records which event, as the last step of its transaction (aggregate: the
order for every order event):
    shop.services.checkout.place_order              OrderPlaced
    shop.services.payments (charge pays the order)  PaymentCaptured
    shop.services.payments (declined: final;        PaymentFailed
        gave up after transient errors: not final)
    shop.services.fulfilment.ship_vendor_lines      OrderShipped
    shop.services.orders.transition_order           OrderCancelled (a declined payment's
        (to cancelled)                              cancel_order, or a vendor cancelling
                                                    the last open line)
    shop.services.refunds (refund succeeded)        RefundIssued
    accounts.services.register_user                 UserRegistered (aggregate: the user)
    backoffice.services.onboarding.approve_vendor   VendorApproved (aggregate: the vendor)

Reactions still run by the services themselves, on commit, not through this map: the
payment and refund charges, the resent verification link, the registration-attempt notice,
the vendor application receipt and the reject/suspend/reinstate emails, the line-cancelled
email, invitations.
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
        "webhooks.handlers.deliver_order_paid",
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
        "webhooks.handlers.deliver_order_cancelled",
    ],
    "RefundIssued": [
        "shop.handlers.publish_order_status",
        "shop.handlers.send_refund_email",
    ],
    "UserRegistered": [
        "accounts.handlers.send_verification_email",
    ],
    "VendorApproved": [
        "backoffice.handlers.send_vendor_approved_email",
    ],
    "EmailSent": [],
}
