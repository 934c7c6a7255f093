"""TOTP codes as RFC 6238 defines them, the drift window, and how typed codes are read."""

import pyotp
import pytest

from accounts.twofactor import services

# RFC 6238 appendix B: the SHA-1 secret "12345678901234567890" (its 8-digit codes' last 6).
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


@pytest.mark.parametrize(
    ("unix_time", "code", "step"),
    [(59, "287082", 1), (1111111109, "081804", 37037036), (1234567890, "005924", 41152263)],
)
def test_codes_match_the_rfc_6238_test_vectors(unix_time, code, step):
    assert services._matching_step(RFC_SECRET, code, now=unix_time) == step


def test_a_code_one_step_either_side_counts_for_clock_drift():
    totp = pyotp.TOTP(RFC_SECRET)
    now = 1_700_000_015

    assert services._matching_step(RFC_SECRET, totp.at(now - 30), now=now) == now // 30 - 1
    assert services._matching_step(RFC_SECRET, totp.at(now + 30), now=now) == now // 30 + 1
    assert services._matching_step(RFC_SECRET, totp.at(now - 60), now=now) is None
    assert services._matching_step(RFC_SECRET, totp.at(now + 60), now=now) is None


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_anything_but_six_digits_is_no_totp_code(typed):
    assert services._matching_step(RFC_SECRET, services.normalise_code(typed), now=59) is None


def test_typed_codes_lose_spaces_dashes_and_case():
    assert services.normalise_code(" ABCDE-FGHJK ") == "abcdefghjk"
    assert services.normalise_code("287 082") == "287082"
