"""A faithful Python port of the MDN HTTP Observatory's scoring, for the tests that apply to
one site fetched over HTTP(S) in a test: test tooling, not part of Bazaar.

Source of the rules: github.com/mdn/mdn-http-observatory, src/analyzer/tests/*.js (csp.js,
cookies.js, cors.js, redirection.js, referrer-policy.js, strict-transport-security.js,
subresource-integrity.js, x-content-type-options.js, x-frame-options.js,
cross-origin-resource-policy.js), the modifiers in src/grader/charts.js (SCORE_TABLE,
MINIMUM_SCORE_FOR_EXTRA_CREDIT = 90) and the sum in src/scanner/index.js: start at 100, add
every test's modifier; bonuses count only when the score from the penalties alone is >= 90.

Not ported: the HSTS preload list lookup (a host can only get `hsts-preloaded` by being on
Chromium's list, which a test host never is) and http-equiv <meta> policies (Bazaar sends
headers only). Everything a page here could change is scored as the Observatory scores it.
"""

from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

MINIMUM_SCORE_FOR_EXTRA_CREDIT = 90

MODIFIERS = {
    # content-security-policy
    "csp-implemented-with-no-unsafe-default-src-none": 10,
    "csp-implemented-with-no-unsafe": 5,
    "csp-implemented-with-unsafe-inline-in-style-src-only": 0,
    "csp-implemented-with-insecure-scheme-in-passive-content-only": -10,
    "csp-implemented-with-unsafe-eval": -10,
    "csp-implemented-with-unsafe-inline": -20,
    "csp-implemented-with-insecure-scheme": -20,
    "csp-header-invalid": -25,
    "csp-not-implemented": -25,
    # cookies
    "cookies-secure-with-httponly-sessions-and-samesite": 5,
    "cookies-secure-with-httponly-sessions": 0,
    "cookies-not-found": 0,
    "cookies-without-secure-flag-but-protected-by-hsts": -5,
    "cookies-session-without-secure-flag-but-protected-by-hsts": -10,
    "cookies-without-secure-flag": -20,
    "cookies-samesite-flag-invalid": -20,
    "cookies-anticsrf-without-samesite-flag": -20,
    "cookies-session-without-httponly-flag": -30,
    "cookies-session-without-secure-flag": -40,
    # cross-origin-resource-sharing
    "cross-origin-resource-sharing-not-implemented": 0,
    "cross-origin-resource-sharing-implemented-with-public-access": 0,
    "cross-origin-resource-sharing-implemented-with-restricted-access": 0,
    "cross-origin-resource-sharing-implemented-with-universal-access": -50,
    # redirection
    "redirection-to-https": 0,
    "redirection-not-needed-no-http": 0,
    "redirection-off-host-from-http": -5,
    "redirection-not-to-https-on-initial-redirection": -10,
    "redirection-not-to-https": -20,
    "redirection-missing": -20,
    # referrer-policy
    "referrer-policy-private": 5,
    "referrer-policy-not-implemented": 0,
    "referrer-policy-unsafe": -5,
    "referrer-policy-header-invalid": -5,
    # strict-transport-security
    "hsts-preloaded": 5,
    "hsts-implemented-max-age-at-least-six-months": 0,
    "hsts-implemented-max-age-less-than-six-months": -10,
    "hsts-not-implemented": -20,
    "hsts-header-invalid": -20,
    "hsts-not-implemented-no-https": -20,
    # subresource-integrity
    "sri-implemented-and-all-scripts-loaded-securely": 5,
    "sri-implemented-and-external-scripts-loaded-securely": 5,
    "sri-not-implemented-response-not-html": 0,
    "sri-not-implemented-but-no-scripts-loaded": 0,
    "sri-not-implemented-but-all-scripts-loaded-from-secure-origin": 0,
    "sri-not-implemented-but-external-scripts-loaded-securely": -5,
    "sri-implemented-but-external-scripts-not-loaded-securely": -20,
    "sri-not-implemented-and-external-scripts-not-loaded-securely": -50,
    # x-content-type-options
    "x-content-type-options-nosniff": 0,
    "x-content-type-options-not-implemented": -5,
    "x-content-type-options-header-invalid": -5,
    # x-frame-options
    "x-frame-options-implemented-via-csp": 5,
    "x-frame-options-sameorigin-or-deny": 0,
    "x-frame-options-allow-from-origin": 0,
    "x-frame-options-not-implemented": -20,
    "x-frame-options-header-invalid": -20,
    # cross-origin-resource-policy
    "corp-implemented-with-same-origin": 10,
    "corp-implemented-with-same-site": 10,
    "corp-implemented-with-cross-origin": 0,
    "corp-not-implemented": 0,
    "corp-header-invalid": -5,
}

DANGEROUSLY_BROAD = {
    "ftp:",
    "http:",
    "https:",
    "*",
    "http://*",
    "http://*.*",
    "https://*",
    "https://*.*",
}
UNSAFE_INLINE = {"'unsafe-inline'", "data:"}
NONCES_HASHES = ("'sha256-", "'sha384-", "'sha512-", "'nonce-")
HTML_TYPES = {"text/html", "application/xhtml+xml"}


@dataclass
class Response:
    """One HTTP response as the Observatory's retriever sees it (header names lowercased)."""

    url: str
    status: int
    headers: dict[str, list[str]]
    body: str = ""

    def first(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return self.headers.get(name.lower(), [])


@dataclass
class Site:
    """What a scan retrieved: the page over HTTPS (`auto`), the cross-origin probe of the same
    page (`cors`, sent with an Origin header), the redirect chain from http://, and every
    Set-Cookie the site sent during the session (the cookie jar)."""

    auto: Response
    cors: Response
    http_chain: list[Response]
    set_cookies: list[str] = field(default_factory=list)


def parse_csp(policies: list[str]) -> dict[str, set[str]]:
    """cspParser.js: directives lowercased, sources as written; the first occurrence of a
    directive wins (duplicates are ignored); several policies intersect only when both name
    a directive, which Bazaar never sends, so one policy is the case ported."""
    csp: dict[str, set[str]] = {}
    for policy in policies:
        for directive in policy.split(";"):
            parts = directive.strip().split()
            if not parts:
                continue
            name = parts[0].lower()
            if name in csp:
                continue
            sources = {
                source if source.startswith("'nonce-") else source.lower() for source in parts[1:]
            }
            csp[name] = sources or {"'none'"}
    return csp


def csp_test(site: Site) -> tuple[str, dict[str, set[str]] | None]:
    headers = [
        policy.strip()
        for value in site.auto.all("content-security-policy")
        for policy in value.split(",")
    ]
    if not headers:
        return "csp-not-implemented", None
    csp = parse_csp(headers)
    if not csp:
        return "csp-not-implemented", None
    https = urlsplit(site.auto.url).scheme == "https"
    star = {"*"}
    object_src = set(csp.get("object-src") or csp.get("default-src") or star)
    script_src = set(csp.get("script-src") or csp.get("default-src") or star)
    style_src = set(csp.get("style-src") or csp.get("default-src") or star)
    for sources in (script_src, style_src):
        if any(source.startswith(NONCES_HASHES) for source in sources):
            sources.discard("'unsafe-inline'")
    result = None
    if (
        any(source.startswith(NONCES_HASHES) for source in script_src)
        and "'strict-dynamic'" in script_src
    ):
        script_src = {
            source
            for source in script_src
            if not any(source.startswith(broad) for broad in DANGEROUSLY_BROAD)
            and source not in {"'self'", "'unsafe-inline'"}
        }
    elif "'strict-dynamic'" in script_src:
        result = "csp-header-invalid"
    passive = {"img-src", "media-src"}
    active_sources = [
        source
        for name, sources in csp.items()
        if name not in passive and name != "script-src"
        for source in sources
    ] + list(script_src)
    passive_sources = [
        source for name in passive for source in (csp.get(name) or csp.get("default-src") or set())
    ]

    def first(value: str) -> None:
        nonlocal result
        if result is None:
            result = value

    if any(source in DANGEROUSLY_BROAD | UNSAFE_INLINE for source in script_src) or any(
        source in DANGEROUSLY_BROAD for source in object_src
    ):
        first("csp-implemented-with-unsafe-inline")
    if https and any(source.startswith(("http:", "ftp:")) for source in active_sources):
        first("csp-implemented-with-insecure-scheme")
    if "'unsafe-eval'" in script_src | style_src:
        first("csp-implemented-with-unsafe-eval")
    if https and any(source.startswith(("http:", "ftp:")) for source in passive_sources):
        first("csp-implemented-with-insecure-scheme-in-passive-content-only")
    if any(source in DANGEROUSLY_BROAD | UNSAFE_INLINE for source in style_src):
        first("csp-implemented-with-unsafe-inline-in-style-src-only")
    if csp.get("default-src") == {"'none'"}:
        first("csp-implemented-with-no-unsafe-default-src-none")
    else:
        first("csp-implemented-with-no-unsafe")
    return result, csp


def hsts_test(site: Site) -> str:
    if urlsplit(site.auto.url).scheme != "https":
        return "hsts-not-implemented-no-https"
    header = site.auto.first("strict-transport-security")
    if header is None:
        return "hsts-not-implemented"
    if "," in header:
        return "hsts-header-invalid"
    max_age = None
    for parameter in (part.strip().lower() for part in header[:1024].split(";")):
        if parameter.startswith("max-age="):
            try:
                max_age = int(parameter[8:128])
            except ValueError:
                return "hsts-header-invalid"
    if max_age is None:
        return "hsts-header-invalid"
    return (
        "hsts-implemented-max-age-at-least-six-months"
        if max_age >= 15_552_000
        else "hsts-implemented-max-age-less-than-six-months"
    )


def _cookie_attributes(raw: str) -> tuple[str, dict[str, str | bool]]:
    parts = [part.strip() for part in raw.split(";")]
    name = parts[0].split("=", 1)[0].strip()
    attributes: dict[str, str | bool] = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        attributes[key.strip().lower()] = value.strip() if value else True
    return name, attributes


def cookies_test(site: Site) -> str:
    order = [
        "cookies-without-secure-flag-but-protected-by-hsts",
        "cookies-without-secure-flag",
        "cookies-session-without-secure-flag-but-protected-by-hsts",
        "cookies-samesite-flag-invalid",
        "cookies-anticsrf-without-samesite-flag",
        "cookies-session-without-httponly-flag",
        "cookies-session-without-secure-flag",
    ]
    result = None

    def only_if_worse(value: str) -> None:
        nonlocal result
        if result is None or order.index(value) > order.index(result):
            result = value

    hsts = hsts_test(site) == "hsts-implemented-max-age-at-least-six-months"
    jar: dict[str, dict[str, str | bool]] = {}
    for raw in site.set_cookies:
        name, attributes = _cookie_attributes(raw)
        samesite = attributes.get("samesite")
        if samesite is not None and (
            samesite is True or str(samesite).lower() not in {"lax", "strict", "none"}
        ):
            only_if_worse("cookies-samesite-flag-invalid")
        jar[name] = attributes  # the jar keeps the last cookie of a name
    if not jar:
        return "cookies-not-found"
    missing_samesite = False
    for name, attributes in jar.items():
        session = any(marker in name.lower() for marker in ("login", "sess"))
        anticsrf = "csrf" in name.lower()
        secure = bool(attributes.get("secure"))
        samesite = attributes.get("samesite")
        if not secure and isinstance(samesite, str) and samesite.lower() == "none":
            only_if_worse("cookies-samesite-flag-invalid")
        if not secure:
            only_if_worse(
                "cookies-without-secure-flag-but-protected-by-hsts"
                if hsts
                else "cookies-without-secure-flag"
            )
        if anticsrf and not samesite:
            only_if_worse("cookies-anticsrf-without-samesite-flag")
        if session and not secure:
            only_if_worse(
                "cookies-session-without-secure-flag-but-protected-by-hsts"
                if hsts
                else "cookies-session-without-secure-flag"
            )
        if session and not attributes.get("httponly"):
            only_if_worse("cookies-session-without-httponly-flag")
        if not samesite:
            missing_samesite = True
    if result is None:
        result = (
            "cookies-secure-with-httponly-sessions"
            if missing_samesite
            else "cookies-secure-with-httponly-sessions-and-samesite"
        )
    return result


def cors_test(site: Site) -> str:
    acao = site.cors.first("access-control-allow-origin")
    if not acao:
        return "cross-origin-resource-sharing-not-implemented"
    acao = acao[:256].strip().lower()
    if acao == "*":
        return "cross-origin-resource-sharing-implemented-with-public-access"
    credentials = (site.cors.first("access-control-allow-credentials") or "").strip().lower()
    if acao == OBSERVATORY_ORIGIN and credentials == "true":
        return "cross-origin-resource-sharing-implemented-with-universal-access"
    return "cross-origin-resource-sharing-implemented-with-restricted-access"


OBSERVATORY_ORIGIN = "https://http-observatory.security.mozilla.org"


def redirection_test(site: Site) -> str:
    chain = site.http_chain
    if not chain:
        return "redirection-not-needed-no-http"
    if len(chain) == 1:
        return "redirection-missing"
    final = urlsplit(chain[-1].url)
    if final.scheme != "https":
        return "redirection-not-to-https"
    first_hop = urlsplit(chain[1].url)
    if first_hop.scheme != "https":
        return "redirection-not-to-https-on-initial-redirection"
    if first_hop.hostname != urlsplit(chain[0].url).hostname:
        return "redirection-off-host-from-http"
    return "redirection-to-https"


def referrer_policy_test(site: Site) -> str:
    good = ["no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"]
    bad = ["origin", "origin-when-cross-origin", "unsafe-url", "no-referrer-when-downgrade"]
    values = site.auto.all("referrer-policy")
    if not values:
        return "referrer-policy-not-implemented"
    valid = [
        part.strip().lower()
        for part in ", ".join(values).split(",")
        if part.strip().lower() in good + bad
    ]
    policy = valid[-1] if valid else ""
    if policy in good:
        return "referrer-policy-private"
    if policy in bad:
        return "referrer-policy-unsafe"
    return "referrer-policy-header-invalid"


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))


def _registrable_domain(host: str) -> str:
    return ".".join(host.split(".")[-2:])


def sri_test(site: Site) -> str:
    mime = (site.auto.first("content-type") or "").split(";")[0].strip()
    if mime and mime not in HTML_TYPES:
        return "sri-not-implemented-response-not-html"
    parser = _Scripts()
    parser.feed(site.auto.body)
    order = [
        "sri-implemented-and-all-scripts-loaded-securely",
        "sri-implemented-and-external-scripts-loaded-securely",
        "sri-implemented-but-external-scripts-not-loaded-securely",
        "sri-not-implemented-but-external-scripts-loaded-securely",
        "sri-not-implemented-and-external-scripts-not-loaded-securely",
        "sri-not-implemented-response-not-html",
    ]
    result = None

    def only_if_worse(value: str) -> None:
        nonlocal result
        if result is None or order.index(value) > order.index(result):
            result = value

    page = urlsplit(site.auto.url)
    foreign = False
    for script in parser.scripts:
        src = script.get("src")
        if not src:
            continue
        integrity = script.get("integrity")
        relative_protocol = src.startswith("//") and not src.startswith("///")
        full_url = src.startswith(("http://", "https://"))
        relative_origin = not relative_protocol and not full_url
        same_domain = relative_protocol or relative_origin
        if full_url:
            same_domain = _registrable_domain(urlsplit(src).hostname or "") == _registrable_domain(
                page.hostname or ""
            )
        secure_origin = relative_origin or (same_domain and not relative_protocol)
        if not secure_origin:
            foreign = True
        scheme = urlsplit(src).scheme + ":" if full_url else None
        secure_scheme = scheme == "https:" or (relative_origin and page.scheme == "https")
        if not secure_origin:
            if integrity and not secure_scheme:
                only_if_worse("sri-implemented-but-external-scripts-not-loaded-securely")
            elif not integrity and secure_scheme:
                only_if_worse("sri-not-implemented-but-external-scripts-loaded-securely")
            elif not integrity:
                only_if_worse("sri-not-implemented-and-external-scripts-not-loaded-securely")
        elif integrity and secure_scheme and result is None:
            result = "sri-implemented-and-all-scripts-loaded-securely"
    if not parser.scripts:
        return "sri-not-implemented-but-no-scripts-loaded"
    if result is None:
        result = (
            "sri-implemented-and-external-scripts-loaded-securely"
            if foreign
            else "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
        )
    return result


def x_content_type_options_test(site: Site) -> str:
    header = site.auto.first("x-content-type-options")
    if header is None:
        return "x-content-type-options-not-implemented"
    return (
        "x-content-type-options-nosniff"
        if header[:256].strip().lower() == "nosniff"
        else "x-content-type-options-header-invalid"
    )


def x_frame_options_test(site: Site, csp: dict[str, set[str]] | None) -> str:
    header = site.auto.first("x-frame-options")
    if header:
        xfo = header[:1024].strip().lower()
        if xfo in {"deny", "sameorigin"}:
            result = "x-frame-options-sameorigin-or-deny"
        elif xfo.startswith("allow-from"):
            result = "x-frame-options-allow-from-origin"
        else:
            result = "x-frame-options-header-invalid"
    else:
        result = "x-frame-options-not-implemented"
    if csp and "frame-ancestors" in csp:
        result = "x-frame-options-implemented-via-csp"
    return result


def corp_test(site: Site) -> str:
    header = site.auto.first("cross-origin-resource-policy")
    if not header:
        return "corp-not-implemented"
    return {
        "same-site": "corp-implemented-with-same-site",
        "same-origin": "corp-implemented-with-same-origin",
        "cross-origin": "corp-implemented-with-cross-origin",
    }.get(header[:256].strip().lower(), "corp-header-invalid")


@dataclass
class Score:
    score: int
    grade: str
    results: dict[str, str]

    def breakdown(self) -> str:
        width = max(len(name) for name in self.results)
        lines = [
            f"  {name:<{width}}  {MODIFIERS[result]:+4d}  {result}"
            for name, result in self.results.items()
        ]
        return "\n".join([*lines, f"  {'score':<{width}}  {self.score:4d}  grade {self.grade}"])


def grade(score: int) -> str:
    chart = [
        (100, "A+"), (90, "A"), (85, "A-"), (80, "B+"), (70, "B"), (65, "B-"), (60, "C+"),
        (50, "C"), (45, "C-"), (40, "D+"), (30, "D"), (25, "D-"), (0, "F"),
    ]  # fmt: skip
    rounded = min(score - score % 5, 100)
    return next(letter for floor, letter in chart if rounded >= floor)


def score(site: Site) -> Score:
    csp_result, csp = csp_test(site)
    results = {
        "content-security-policy": csp_result,
        "cookies": cookies_test(site),
        "cross-origin-resource-sharing": cors_test(site),
        "redirection": redirection_test(site),
        "referrer-policy": referrer_policy_test(site),
        "strict-transport-security": hsts_test(site),
        "subresource-integrity": sri_test(site),
        "x-content-type-options": x_content_type_options_test(site),
        "x-frame-options": x_frame_options_test(site, csp),
        "cross-origin-resource-policy": corp_test(site),
    }
    with_extra_credit = 100 + sum(MODIFIERS[result] for result in results.values())
    uncurved = 100 + sum(min(0, MODIFIERS[result]) for result in results.values())
    total = max(0, with_extra_credit if uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT else uncurved)
    return Score(score=total, grade=grade(total), results=results)


def set_cookie_headers(response: Response) -> list[str]:
    return response.all("set-cookie")


def cookie_header(set_cookies: list[str]) -> str:
    """The Cookie header a browser would send back for these Set-Cookie lines."""
    jar = SimpleCookie()
    for raw in set_cookies:
        name_value = raw.split(";", 1)[0]
        name, _, value = name_value.partition("=")
        jar[name.strip()] = value.strip()
    return "; ".join(f"{key}={morsel.value}" for key, morsel in jar.items())
