"""The load: shoppers (and one vendor) using the shop over real HTTP, as a browser would.

Each shopper signs in, adds products to the cart from their pages, checks out (address,
review, card), follows the redirect to the order page and watches it until the payment
settles; on a failed payment it often presses "Pay now" again, sometimes twice at once,
and now and then tries to pay a cancelled order. The vendor restocks its products and
ships paid orders from the backoffice.

Requests go to either web process at random, like a load balancer. A request that could
not connect (the process is dead) is sent to the other one; a request that may have
reached a server is never resent: that is the shopper's cycle aborted, as in a browser.
"""

import datetime
import logging
import random
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import pyotp
import requests
from urllib3.exceptions import NewConnectionError

logger = logging.getLogger("chaos")

# Card numbers with their weights: approve, decline, insufficient funds, always transient.
CARDS = [
    ("4242424242424242", 72),
    ("4000000000000002", 18),
    ("4000000000009995", 6),
    ("4000000000000119", 4),
]
GOOD_CARD = "4242424242424242"
DECLINED = "4000000000000002"
TIMEOUT = 20
WATCH_SECONDS = 45

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
ADDRESS_RE = re.compile(r'name="address" value="(\d+)"')
ORDER_PATH_RE = re.compile(r"^/orders/(\d+)/$")
TWO_FACTOR_PATH = "/accounts/two-factor/"
CANCEL_LINE_RE = re.compile(r'action="(/backoffice/orders/\d+/lines/\d+/cancel/)"')
REMOVE_RE = re.compile(r'action="(/cart/items/\d+/remove/)"')
# Tolerant of the order page's layout: the first pill after the status block's id is the
# order's, the one after "Payment" the latest payment's.
ORDER_STATUS_RE = re.compile(r'id="order-status".*?class="pill pill-([a-z_]+)"', re.DOTALL)
PAYMENT_STATUS_RE = re.compile(r'<dt>Payment</dt>\s*<dd><span class="pill pill-([a-z_]+)"')
PROGRESS_RE = re.compile(r'class="payment-status payment-([a-z_]+)"')
IN_FLIGHT_PROGRESS = {"processing", "retrying", "confirming"}


class Aborted(Exception):
    """This shopping trip cannot go on (an error page, no server answered, signed out)."""


@dataclass(frozen=True)
class OrderPage:
    order_status: str
    payment_status: str
    progress: str
    in_flight: bool
    can_pay: bool
    says_confirmed: bool
    says_not_charged: bool

    @classmethod
    def parse(cls, html: str, pk: int) -> "OrderPage":
        order = ORDER_STATUS_RE.search(html)
        payment = PAYMENT_STATUS_RE.search(html)
        progress = PROGRESS_RE.search(html)
        progress_text = progress.group(1) if progress else ""
        return cls(
            order_status=order.group(1) if order else "?",
            payment_status=payment.group(1) if payment else "",
            progress=progress_text,
            in_flight=progress_text in IN_FLIGHT_PROGRESS
            or "data-poll-while-live" in html
            or "Processing payment</span>" in html,
            can_pay=f'action="/orders/{pk}/pay/"' in html,
            says_confirmed=" is confirmed.</p>" in html,
            says_not_charged="you have not been charged" in html,
        )


@dataclass
class Traffic:
    """What the load did, shared by every shopper thread."""

    counts: Counter = field(default_factory=Counter)
    errors: list[dict] = field(default_factory=list)
    # order id -> the shopper's email
    orders: dict[int, str] = field(default_factory=dict)
    paid: deque = field(default_factory=lambda: deque(maxlen=200))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def error(self, **details) -> None:
        with self.lock:
            self.errors.append(details)


def _refused(exc: requests.ConnectionError) -> bool:
    """True when the connection was never made, so the request surely did not arrive."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


class Client:
    """One browser: a cookie jar used against both web processes."""

    def __init__(self, *, name: str, ports: list[int], rng: random.Random, traffic: Traffic):
        self.name = name
        self.ports = ports
        self.rng = rng
        self.traffic = traffic
        self.session = requests.Session()

    def clone(self) -> "Client":
        other = Client(name=self.name, ports=self.ports, rng=self.rng, traffic=self.traffic)
        other.session.cookies.update(self.session.cookies)
        return other

    def send(self, method: str, path: str, data: dict | None = None) -> requests.Response:
        ports = self.ports[:]
        self.rng.shuffle(ports)
        for port in ports:
            sent_at = datetime.datetime.now(datetime.UTC)
            try:
                response = self.session.request(
                    method,
                    f"http://127.0.0.1:{port}{path}",
                    data=data,
                    timeout=TIMEOUT,
                    allow_redirects=False,
                )
            except requests.ConnectionError as exc:
                if method == "GET" or _refused(exc):
                    self.traffic.count("connection refused (sent to the other web)")
                    continue
                self.traffic.count("connection lost mid-request")
                raise Aborted(f"{method} {path}: {exc.__class__.__name__}") from exc
            except requests.Timeout as exc:
                self.traffic.count("request timed out")
                raise Aborted(f"{method} {path}: timed out") from exc
            self.traffic.count("requests")
            if response.status_code >= 500:
                self.traffic.count(f"HTTP {response.status_code}")
                self.traffic.error(
                    sent_at=sent_at.isoformat(),
                    at=datetime.datetime.now(datetime.UTC).isoformat(),
                    shopper=self.name,
                    method=method,
                    path=path,
                    status=response.status_code,
                    port=port,
                    request_id=response.headers.get("X-Request-ID", ""),
                )
                raise Aborted(f"{method} {path}: HTTP {response.status_code}")
            return response
        raise Aborted(f"{method} {path}: no web process answered")

    def go(self, method: str, path: str, data: dict | None = None) -> requests.Response:
        """Send, then follow redirects (as GETs) like a browser."""
        response = self.send(method, path, data)
        for _ in range(5):
            if response.status_code not in (301, 302, 303):
                break
            location = response.headers["Location"]
            path = re.sub(r"^https?://[^/]+", "", location)
            response = self.send("GET", path)
        response.path = re.sub(r"^https?://[^/]+", "", response.url).split("?")[0]
        return response

    def post_form(self, page: requests.Response, action: str, data: dict) -> requests.Response:
        match = CSRF_RE.search(page.text)
        if not match:
            raise Aborted(f"no CSRF token on {page.path}")
        return self.go("POST", action, {"csrfmiddlewaretoken": match.group(1), **data})

    def login(self, email: str, password: str, *, totp_secret: str | None = None) -> None:
        page = self.go("GET", "/accounts/login/")
        response = self.post_form(page, "/accounts/login/", {"email": email, "password": password})
        if response.path == TWO_FACTOR_PATH and totp_secret:
            response = self._second_factor(response, totp_secret)
        if response.path.startswith(("/accounts/login/", TWO_FACTOR_PATH)):
            raise Aborted(f"could not sign in as {email} (HTTP {response.status_code})")

    def _second_factor(self, page: requests.Response, secret: str) -> requests.Response:
        """Answer the code step as the authenticator app would. A code is accepted once, so a
        sign-in within the same 30-second step as the previous one waits for the next step."""
        totp = pyotp.TOTP(secret)
        response = page
        for _ in range(2):
            response = self.post_form(response, TWO_FACTOR_PATH, {"code": totp.now()})
            if response.path != TWO_FACTOR_PATH:
                break
            time.sleep(totp.interval - time.time() % totp.interval + 0.5)
        return response


class Person(threading.Thread):
    """Someone using the shop in a loop of `act()` until the load stops."""

    label = "person"
    pause = (0.2, 1.0)  # seconds between two rounds

    def __init__(
        self,
        *,
        email: str,
        password: str,
        ports: list[int],
        seed: int,
        traffic: Traffic,
        stop: threading.Event,
        totp_secret: str | None = None,
    ) -> None:
        super().__init__(name=email, daemon=True)
        self.email = email
        self.password = password
        self.totp_secret = totp_secret  # shop owners sign in with a second factor
        self.rng = random.Random(seed)
        self.traffic = traffic
        self.stop = stop
        self.client = Client(name=email, ports=ports, rng=self.rng, traffic=traffic)
        self.signed_in = False

    def act(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                if not self.signed_in:
                    self.client.login(self.email, self.password, totp_secret=self.totp_secret)
                    self.signed_in = True
                self.act()
            except Aborted as exc:
                self.traffic.count(f"{self.label} rounds aborted")
                logger.debug("%s: %s", self.email, exc)
                self.stop.wait(1)
            except Exception:
                self.traffic.count(f"{self.label} crashed (harness bug)")
                logger.exception("%s %s failed", self.label, self.email)
                self.stop.wait(1)
            self.stop.wait(self.rng.uniform(*self.pause))


class Shopper(Person):
    label = "shopper"

    def __init__(self, *, catalogue: list[dict], **kwargs) -> None:
        super().__init__(**kwargs)
        self.catalogue = catalogue

    def _check_signed_in(self, response: requests.Response) -> None:
        if response.path.startswith("/accounts/login/"):
            self.signed_in = False
            self.traffic.count("sent to sign in again")
            raise Aborted("signed out")

    def act(self) -> None:
        """One shopping trip: products into the cart, checkout, the order page."""
        for product in self.rng.sample(self.catalogue, self.rng.choice([1, 1, 2])):
            page = self.client.go("GET", f"/p/{product['slug']}/")
            self._check_signed_in(page)
            added = self.client.post_form(
                page,
                "/cart/add/",
                {
                    "product_id": product["id"],
                    "quantity": self.rng.choice([1, 1, 2]),
                    "next": "/cart/",
                },
            )
            self._check_signed_in(added)
        address_page = self.client.go("GET", "/checkout/")
        self._check_signed_in(address_page)
        if address_page.path != "/checkout/":
            self.traffic.count("checkout refused: cart not checkoutable")
            self._empty_cart(address_page)
            return
        choice = ADDRESS_RE.search(address_page.text)
        if not choice:
            raise Aborted("no saved address offered")
        review = self.client.post_form(address_page, "/checkout/", {"address": choice.group(1)})
        if review.path != "/checkout/review/":
            self.traffic.count("checkout refused at the address step")
            self._empty_cart(review)
            return
        card = self._card()
        self.traffic.count("orders submitted")
        if self.rng.random() < 0.05:
            results = self._at_once(review, "/checkout/review/", card)
            self.traffic.count("double-clicked 'Place order'")
        else:
            results = [self.client.post_form(review, "/checkout/review/", card)]
        placed = [ORDER_PATH_RE.match(r.path) for r in results]
        for match in placed:
            if match:
                with self.traffic.lock:
                    self.traffic.orders[int(match.group(1))] = self.email
        orders = [int(m.group(1)) for m in placed if m]
        if not orders:
            self.traffic.count("checkout refused at review (stock or an error message)")
            if self.rng.random() < 0.5:
                self._empty_cart(results[-1])
            return
        self.traffic.count("orders placed", len(orders))
        self.watch_order(orders[0])

    def watch_order(self, pk: int, attempts: int = 0) -> None:
        deadline = time.monotonic() + WATCH_SECONDS
        while True:
            page = self.client.go("GET", f"/orders/{pk}/")
            state = OrderPage.parse(page.text, pk)
            if not state.in_flight or time.monotonic() > deadline or self.stop.is_set():
                break
            self.stop.wait(1)
        if state.in_flight:
            self.traffic.count("stopped watching a payment still in flight")
            return
        self.traffic.count(f"order seen {state.order_status}")
        if state.order_status == "paid":
            self.traffic.paid.append(pk)
        if state.can_pay and attempts < 2 and self.rng.random() < 0.85:
            self.traffic.count("pressed 'Pay now' again")
            card = self._card(good=self.rng.random() < 0.8)
            if self.rng.random() < 0.1:
                self.traffic.count("double-clicked 'Pay now'")
                self._at_once(page, f"/orders/{pk}/pay/", card)
            else:
                self.client.post_form(page, f"/orders/{pk}/pay/", card)
            self.watch_order(pk, attempts + 1)
        elif state.order_status == "cancelled" and self.rng.random() < 0.1:
            # A stale tab: the form is gone from the page, but the POST still arrives.
            self.traffic.count("tried to pay a cancelled order")
            self.client.post_form(page, f"/orders/{pk}/pay/", self._card(good=True))

    def _card(self, good: bool = False) -> dict:
        number = GOOD_CARD if good else self.rng.choices(*zip(*CARDS, strict=True))[0]
        return {"card_number": number, "expiry": "12/34", "cvc": "123"}

    def _at_once(self, page: requests.Response, action: str, data: dict) -> list:
        """Two submits of the same form at once (a double click, two tabs)."""
        clients = [self.client, self.client.clone()]
        results: list = [None, None]

        def submit(index: int) -> None:
            try:
                results[index] = clients[index].post_form(page, action, data)
            except Aborted as exc:
                results[index] = exc

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.client.session.cookies.update(clients[1].session.cookies)
        responses = [r for r in results if isinstance(r, requests.Response)]
        if not responses:
            raise results[0]
        return responses

    def _empty_cart(self, page: requests.Response) -> None:
        cart = page if page.path == "/cart/" else self.client.go("GET", "/cart/")
        for action in REMOVE_RE.findall(cart.text):
            self.client.post_form(cart, action, {"next": "/cart/"})


class Vendor(Person):
    """The first demo vendor: restocks its products and ships paid orders."""

    label = "vendor"
    pause = (1.0, 2.5)

    def __init__(self, *, products: list[dict], **kwargs) -> None:
        super().__init__(**kwargs)
        self.products = products

    def act(self) -> None:
        self.restock()
        self.fulfil()

    def restock(self) -> None:
        if not self.products:
            return
        product = self.rng.choice(self.products)
        path = f"/backoffice/products/{product['id']}/stock/"
        page = self.client.go("GET", path)
        change = self.rng.randint(3, 8)
        self.client.post_form(page, path, {"change": change, "reason": "received", "note": "chaos"})
        self.traffic.count("vendor restocks")

    def fulfil(self) -> None:
        """Of the paid orders the shoppers saw, ship some and cancel an item of others (which
        refunds it: refunds then run through the same faults as charges)."""
        with self.traffic.lock:
            candidates = [
                self.traffic.paid.popleft() for _ in range(min(2, len(self.traffic.paid)))
            ]
        for pk in candidates:
            path = f"/backoffice/orders/{pk}/"
            page = self.client.send("GET", path)
            if page.status_code != 200:
                continue  # no lines of this vendor's in that order
            page.path = path
            roll = self.rng.random()
            cancel = CANCEL_LINE_RE.search(page.text)
            if roll < 0.3 and cancel:
                self.client.post_form(page, cancel.group(1), {"reason": "Broke in the warehouse"})
                self.traffic.count("vendor cancelled an item (refund)")
            elif roll < 0.7:
                self.client.post_form(
                    page, f"{path}ship/", {"carrier": "DHL", "tracking_number": f"CH{pk:08d}"}
                )
                self.traffic.count("vendor shipments")


def audit_order_pages(shoppers: list[Shopper], orders: dict[int, str]) -> dict[int, OrderPage]:
    """Each order's page as its shopper sees it now (after the run has settled)."""
    by_email = {shopper.email: shopper.client for shopper in shoppers}
    pages = {}
    for pk, email in sorted(orders.items()):
        try:
            response = by_email[email].go("GET", f"/orders/{pk}/")
        except Aborted:
            continue
        if response.status_code == 200:
            pages[pk] = OrderPage.parse(response.text, pk)
    return pages
