"""Comparing a secret a notification carries: whatever it holds, the answer is yes or no."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from providers.local.push import StoreReceiver
from providers.push import Delivery, Notice, same_secret


@pytest.mark.parametrize("given", ["s3cret\ud800", "sécret", "\x00", "", None])
def test_a_strange_token_is_refused_not_an_error(given: str | None) -> None:
    assert same_secret(given, "s3cret") is False


def test_the_right_token_is_accepted() -> None:
    assert same_secret("s3cret", "s3cret")


@pytest.mark.parametrize("signature", ["é" * 64, "\ud800", ""])
def test_a_store_signature_that_is_not_hex_is_forged(signature: str) -> None:
    body = b'{"channel": "c1"}'
    notice = Notice("c1", "c1:1")
    forged = Delivery(headers={"x-store-signature": signature}, query={}, body=body)
    assert not StoreReceiver().genuine(notice, forged, "secret")
    good = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    signed = Delivery(headers={"x-store-signature": good}, query={}, body=body)
    assert StoreReceiver().genuine(notice, signed, "secret")
