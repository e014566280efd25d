"""Authenticity checks with real crypto: valid, forged, missing, expired, several v1, rotation."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from producers.adapters import ADAPTERS, SignatureError
from producers.adapters.signatures import (
    presented_secret,
    public_key_pem,
    sign_ghl_ed25519,
    sign_ghl_rsa,
    sign_stripe,
    verify_stripe_signature,
)
from tests.fixtures.webhooks import RECEIVED_AT, encode, fixture_bytes, make_request

NOW = int(RECEIVED_AT.timestamp())
BODY = fixture_bytes("stripe", "checkout_session_completed")
SECRET = "whsec_FAKE_current"
OLD_SECRET = "whsec_FAKE_previous"

ED_KEY = Ed25519PrivateKey.generate()
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_ED_KEY = Ed25519PrivateKey.generate()


def _v1(secret: str, t: int = NOW, body: bytes = BODY) -> str:
    return sign_stripe(body, secret, t).split(",")[1]


# --- Stripe -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "secrets"),
    [
        (sign_stripe(BODY, SECRET, NOW), [SECRET]),
        (sign_stripe(BODY, SECRET, NOW - 299), [SECRET]),
        (f"t={NOW},{_v1('whsec_other')},{_v1(SECRET)}", [SECRET]),  # any of several v1
        (f"t={NOW},v0=deadbeef,{_v1(SECRET)}", [SECRET]),  # other schemes are ignored
        (sign_stripe(BODY, OLD_SECRET, NOW), [SECRET, OLD_SECRET]),  # rotation
    ],
)
def test_stripe_accepts(header: str, secrets: list[str]) -> None:
    verify_stripe_signature(BODY, header, secrets, now=RECEIVED_AT)


@pytest.mark.parametrize(
    ("header", "secrets", "reason"),
    [
        (None, [SECRET], "missing Stripe-Signature header"),
        ("", [SECRET], "missing Stripe-Signature header"),
        (sign_stripe(BODY, SECRET, NOW), [], "no secret configured for stripe"),
        (sign_stripe(BODY, "whsec_forged", NOW), [SECRET], "no matching Stripe signature"),
        (sign_stripe(BODY + b" ", SECRET, NOW), [SECRET], "no matching Stripe signature"),
        (sign_stripe(BODY, SECRET, NOW - 301), [SECRET], "outside the tolerance"),
        (sign_stripe(BODY, SECRET, NOW + 301), [SECRET], "outside the tolerance"),
        (f"t={NOW - 1},{_v1(SECRET)}", [SECRET], "no matching Stripe signature"),  # t swapped
        (f"t=abc,{_v1(SECRET)}", [SECRET], "malformed"),
        (_v1(SECRET), [SECRET], "malformed"),
        (f"t={NOW}", [SECRET], "no v1 signature"),
        (f"t={NOW},t={NOW},{_v1(SECRET)}", [SECRET], "malformed"),
        (f"t={NOW},v1=\u00e9\u00e9", [SECRET], "no matching Stripe signature"),
    ],
)
def test_stripe_rejects(header: str | None, secrets: list[str], reason: str) -> None:
    with pytest.raises(SignatureError, match=reason) as info:
        verify_stripe_signature(BODY, header, secrets, now=RECEIVED_AT)
    assert info.value.status_code == 401


# --- shared secrets (chatbot, perspective) ------------------------------------------------


@pytest.mark.parametrize("source", ["chatbot", "perspective"])
@pytest.mark.parametrize(
    ("headers", "credentials"),
    [
        ({"X-Capi-Secret": "s3cret"}, {"secret": "s3cret"}),
        ({"Authorization": "Bearer s3cret"}, {"secret": "s3cret"}),
        ({"authorization": "bearer  s3cret "}, {"secret": "s3cret"}),
        ({"X-Capi-Secret": "old"}, {"secret": "s3cret", "previous_secret": "old"}),
    ],
)
def test_shared_secret_accepts(
    source: str, headers: dict[str, str], credentials: dict[str, Any]
) -> None:
    ADAPTERS[source].verify(make_request(b"{}", headers), credentials)


@pytest.mark.parametrize("source", ["chatbot", "perspective"])
@pytest.mark.parametrize(
    ("headers", "credentials", "reason"),
    [
        ({"X-Capi-Secret": "s3cret"}, None, "no secret configured for"),
        ({"X-Capi-Secret": "s3cret"}, {"secret": ""}, "no secret configured for"),
        ({}, {"secret": "s3cret"}, "missing secret"),
        ({"Authorization": "Basic czNjcmV0"}, {"secret": "s3cret"}, "missing secret"),
        ({"X-Capi-Secret": "s3cre"}, {"secret": "s3cret"}, "invalid secret"),
        ({"X-Capi-Secret": "s3cret!"}, {"secret": "s3cret"}, "invalid secret"),
        ({"X-Capi-Secret": "older"}, {"secret": "s3cret", "previous_secret": "old"}, "invalid"),
    ],
)
def test_shared_secret_rejects(
    source: str, headers: dict[str, str], credentials: dict[str, Any] | None, reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason):
        ADAPTERS[source].verify(make_request(b"{}", headers), credentials)


def test_presented_secret_prefers_the_dedicated_header() -> None:
    assert presented_secret({"x-capi-secret": "a", "authorization": "Bearer b"}) == "a"
    assert presented_secret({}) is None


# --- Denefits: body secret_key or header --------------------------------------------------

DENEFITS_BODY = fixture_bytes("denefits", "contract_created")
DENEFITS_SECRET = {"secret": "dnf_FAKE_endpoint_secret"}


@pytest.mark.parametrize(
    ("body", "headers", "credentials"),
    [
        (DENEFITS_BODY, {}, DENEFITS_SECRET),
        (b'{"a":1}', {"X-Capi-Secret": "dnf_FAKE_endpoint_secret"}, DENEFITS_SECRET),
        (DENEFITS_BODY, {"X-Capi-Secret": "wrong"}, DENEFITS_SECRET),  # either may match
        (DENEFITS_BODY, {}, {"secret": "new", "previous_secret": "dnf_FAKE_endpoint_secret"}),
    ],
)
def test_denefits_accepts(body: bytes, headers: dict[str, str], credentials: Any) -> None:
    ADAPTERS["denefits"].verify(make_request(body, headers), credentials)


@pytest.mark.parametrize(
    ("body", "headers", "credentials", "reason"),
    [
        (DENEFITS_BODY, {}, None, "no secret configured for denefits"),
        (DENEFITS_BODY, {}, {"secret": "other"}, "invalid secret"),
        (b'{"a":1}', {}, DENEFITS_SECRET, "missing secret"),
        (b"not json", {"X-Capi-Secret": "wrong"}, DENEFITS_SECRET, "invalid secret"),
    ],
)
def test_denefits_rejects(
    body: bytes, headers: dict[str, str], credentials: Any, reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason):
        ADAPTERS["denefits"].verify(make_request(body, headers), credentials)


# --- GoHighLevel --------------------------------------------------------------------------

GHL_BODY = fixture_bytes("ghl", "appointment_create")  # timestamp 2026-01-28T19:35:00Z
GHL_KEYS = {
    "public_key_ed25519": public_key_pem(ED_KEY),
    "public_key_rsa": public_key_pem(RSA_KEY),
    "workflow_secret": "wf_s3cret",
}
RAW_ED25519 = base64.b64encode(
    ED_KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
).decode()
DER_ED25519 = base64.b64encode(
    ED_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


def _ghl(headers: dict[str, str], body: bytes = GHL_BODY, minutes: float = 30) -> Any:
    received = RECEIVED_AT - timedelta(minutes=minutes)  # 19:35 == the body's timestamp
    return make_request(body, headers, received_at=received)


@pytest.mark.parametrize(
    ("headers", "credentials", "minutes"),
    [
        ({"x-ghl-signature": sign_ghl_ed25519(GHL_BODY, ED_KEY)}, GHL_KEYS, 30),
        ({"x-ghl-signature": sign_ghl_ed25519(GHL_BODY, ED_KEY)}, GHL_KEYS, 25.5),
        ({"x-ghl-signature": sign_ghl_ed25519(GHL_BODY, ED_KEY)}, GHL_KEYS, 34.5),
        (
            {"x-ghl-signature": sign_ghl_ed25519(GHL_BODY, ED_KEY)},
            {**GHL_KEYS, "public_key_ed25519": RAW_ED25519},
            30,
        ),
        (
            {"x-ghl-signature": sign_ghl_ed25519(GHL_BODY, ED_KEY)},
            {"public_key_ed25519": DER_ED25519},
            30,
        ),
        ({"x-wh-signature": sign_ghl_rsa(GHL_BODY, RSA_KEY)}, GHL_KEYS, 30),
        (  # Ed25519 preferred; RSA is used when no Ed25519 key is configured
            {"x-ghl-signature": "garbage", "x-wh-signature": sign_ghl_rsa(GHL_BODY, RSA_KEY)},
            {"public_key_rsa": public_key_pem(RSA_KEY)},
            30,
        ),
        ({"X-Capi-Secret": "wf_s3cret"}, GHL_KEYS, 600),  # workflow: no timestamp window
        (
            {"X-Capi-Secret": "wf_old"},
            {"workflow_secret": "x", "previous_workflow_secret": "wf_old"},
            0,
        ),
    ],
)
def test_ghl_accepts(headers: dict[str, str], credentials: Any, minutes: float) -> None:
    ADAPTERS["ghl"].verify(_ghl(headers, minutes=minutes), credentials)


def test_ghl_accepts_a_signature_over_the_compact_reserialisation() -> None:
    pretty = json.dumps(json.loads(GHL_BODY), indent=2).encode()
    signature = sign_ghl_ed25519(encode(json.loads(GHL_BODY)), ED_KEY)
    ADAPTERS["ghl"].verify(_ghl({"x-ghl-signature": signature}, body=pretty), GHL_KEYS)


@pytest.mark.parametrize(
    ("headers", "credentials", "minutes", "reason"),
    [
        (
            {"x-ghl-signature": sign_ghl_ed25519(GHL_BODY, OTHER_ED_KEY)},
            GHL_KEYS,
            30,
            "invalid x-ghl-signature",
        ),
        (
            {"x-ghl-signature": sign_ghl_ed25519(GHL_BODY + b" ", ED_KEY)},
            GHL_KEYS,
            30,
            "invalid x-ghl-signature",
        ),
        ({"x-ghl-signature": "not base64!"}, GHL_KEYS, 30, "not base64"),
        ({"x-wh-signature": sign_ghl_rsa(b"{}", RSA_KEY)}, GHL_KEYS, 30, "invalid x-wh-signature"),
        ({"x-ghl-signature": sign_ghl_ed25519(GHL_BODY, ED_KEY)}, GHL_KEYS, 24, "5-minute window"),
        ({"x-ghl-signature": sign_ghl_ed25519(GHL_BODY, ED_KEY)}, GHL_KEYS, 36, "5-minute window"),
        ({"x-wh-signature": sign_ghl_rsa(GHL_BODY, RSA_KEY)}, GHL_KEYS, 20, "5-minute window"),
        (
            {"x-ghl-signature": sign_ghl_ed25519(GHL_BODY, ED_KEY)},
            {"workflow_secret": "wf_s3cret"},
            30,
            "no ghl public key",
        ),
        (
            {"x-ghl-signature": sign_ghl_ed25519(GHL_BODY, ED_KEY)},
            {"public_key_ed25519": "junk"},
            30,
            "unreadable",
        ),
        (
            {"x-ghl-signature": sign_ghl_ed25519(GHL_BODY, ED_KEY)},
            {"public_key_ed25519": public_key_pem(RSA_KEY)},
            30,
            "not an Ed25519",
        ),
        (
            {"x-wh-signature": sign_ghl_rsa(GHL_BODY, RSA_KEY)},
            {"public_key_rsa": public_key_pem(ED_KEY)},
            30,
            "not an RSA",
        ),
        ({}, GHL_KEYS, 30, "missing secret"),
        ({"X-Capi-Secret": "wrong"}, GHL_KEYS, 30, "invalid secret"),
        (
            {"X-Capi-Secret": "wf_s3cret"},
            {"public_key_rsa": "x"},
            30,
            "no secret configured for ghl",
        ),
        ({"X-Capi-Secret": "wf_s3cret"}, None, 30, "no secret configured for ghl"),
    ],
)
def test_ghl_rejects(
    headers: dict[str, str], credentials: Any, minutes: float, reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason):
        ADAPTERS["ghl"].verify(_ghl(headers, minutes=minutes), credentials)


def test_ghl_signed_body_without_timestamp_is_rejected() -> None:
    body = b'{"type":"AppointmentCreate","webhookId":"wh_1"}'
    headers = {"x-ghl-signature": sign_ghl_ed25519(body, ED_KEY)}
    with pytest.raises(SignatureError, match="no timestamp"):
        ADAPTERS["ghl"].verify(_ghl(headers, body=body), GHL_KEYS)
