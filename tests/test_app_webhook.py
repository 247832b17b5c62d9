"""X-Hub-Signature-256 verification (the server-level behaviour is in test_app_e2e.py)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.server.webhook import verify_signature

SECRET = b"It's a Secret to Everybody"
BODY = b"Hello, World!"
# GitHub's own example from "Validating webhook deliveries".
GITHUB_EXAMPLE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_documented_example() -> None:
    assert verify_signature(SECRET, BODY, GITHUB_EXAMPLE)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        GITHUB_EXAMPLE[:-1] + "0",
        GITHUB_EXAMPLE.replace("sha256=", "sha1="),
        GITHUB_EXAMPLE.replace("sha256=", ""),
        "sha1=" + hmac.new(SECRET, BODY, hashlib.sha1).hexdigest(),  # the legacy header's value
    ],
)
def test_rejected(header: str | None) -> None:
    assert not verify_signature(SECRET, BODY, header)


def test_other_secret_or_body_is_rejected() -> None:
    assert not verify_signature(b"other", BODY, GITHUB_EXAMPLE)
    assert not verify_signature(SECRET, BODY + b" ", GITHUB_EXAMPLE)


@given(st.binary(max_size=2048), st.binary(min_size=1, max_size=64))
def test_round_trip(body: bytes, secret: bytes) -> None:
    header = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert verify_signature(secret, body, header)
    assert verify_signature(secret, body, header.upper().replace("SHA256=", "sha256="))
    assert not verify_signature(secret + b"x", body, header)
