"""Webhook authenticity: shared secrets, Stripe HMAC, GoHighLevel Ed25519/RSA signatures.

Every check compares in constant time and raises
:class:`~producers.adapters.base.SignatureError` (HTTP 401). The ``sign_*`` helpers produce
the exact headers a sender would, so tests and integration tests can sign real requests.

Headers are looked up by lower-case name (``WebhookRequest.headers`` is lower-cased).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from producers.adapters.base import SignatureError, WebhookRequest

SECRET_HEADER = "x-capi-secret"  # noqa: S105 -- a header name, not a secret
STRIPE_HEADER = "stripe-signature"
GHL_ED25519_HEADER = "x-ghl-signature"
GHL_RSA_HEADER = "x-wh-signature"
STRIPE_TOLERANCE = timedelta(seconds=300)
GHL_TOLERANCE = timedelta(minutes=5)


def configured_secrets(secrets: Mapping[str, Any], *keys: str) -> list[str]:
    """The non-empty string secrets stored under ``keys`` (a key may hold a list)."""
    found: list[str] = []
    for key in keys:
        value = secrets.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item:
                found.append(item)
    return found


def presented_secret(headers: Mapping[str, str]) -> str | None:
    """The secret the caller sent: ``x-capi-secret``, else ``Authorization: Bearer <secret>``."""
    secret = headers.get(SECRET_HEADER)
    if secret:
        return secret.strip()
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def secret_matches(presented: str, candidates: Sequence[str]) -> bool:
    """Constant-time comparison against every candidate (no early exit)."""
    given = presented.encode("utf-8", "surrogatepass")
    results = [hmac.compare_digest(given, c.encode("utf-8", "surrogatepass")) for c in candidates]
    return any(results)


def verify_shared_secret(presented: str | None, candidates: Sequence[str], source: str) -> None:
    """Raise unless ``presented`` equals one of ``candidates`` (current and previous secret)."""
    if not candidates:
        raise SignatureError(f"no secret configured for {source}")
    if presented is None:
        raise SignatureError("missing secret")
    if not secret_matches(presented, candidates):
        raise SignatureError("invalid secret")


# --- Stripe -------------------------------------------------------------------------------


class SharedSecretVerifier:
    """``verify`` and ``delivery_id`` of a source with no signature of its own (ManyChat,
    Perspective): a per-tenant secret in ``X-Capi-Secret`` or ``Authorization: Bearer``,
    ``previous_secret`` accepted during a rotation; no delivery id."""

    source: str

    def verify(self, request: WebhookRequest, secrets: Mapping[str, Any] | None) -> None:
        """Check the presented secret against the tenant's, in constant time."""
        candidates = configured_secrets(secrets or {}, "secret", "previous_secret")
        verify_shared_secret(presented_secret(request.headers), candidates, self.source)

    def delivery_id(self, request: WebhookRequest) -> str | None:
        """These senders have no delivery id."""
        return None


def _stripe_digest(body: bytes, secret: str, timestamp: int) -> str:
    message = f"{timestamp}.".encode() + body
    # One-shot HMAC: OpenSSL in one call, not hmac.new's Python object.
    return hmac.digest(secret.encode("utf-8", "surrogatepass"), message, "sha256").hex()


def _is_unix_seconds(value: str) -> bool:
    # 12 digits reach the year 33658; anything longer is garbage, not a timestamp.
    return value.isascii() and value.isdigit() and len(value) <= 12


def sign_stripe(body: bytes, secret: str, t: int) -> str:
    """The ``Stripe-Signature`` header Stripe would send for ``body`` at Unix time ``t``."""
    return f"t={t},v1={_stripe_digest(body, secret, t)}"


def verify_stripe_signature(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    now: datetime,
    tolerance: timedelta = STRIPE_TOLERANCE,
) -> None:
    """Check ``t=...,v1=...[,v1=...]`` over ``f"{t}." + body``; any ``v1`` may match any secret.

    Raises:
        SignatureError: no secret, missing or malformed header, ``t`` further than
            ``tolerance`` from ``now``, or no matching signature.
    """
    if not secrets:
        raise SignatureError("no secret configured for stripe")
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not _is_unix_seconds(timestamps[0]):
        raise SignatureError("malformed Stripe-Signature header")
    if not signatures:
        raise SignatureError("no v1 signature in Stripe-Signature header")
    t = int(timestamps[0])
    if abs(now.timestamp() - t) > tolerance.total_seconds():
        raise SignatureError("Stripe-Signature timestamp outside the tolerance")
    expected = [_stripe_digest(body, secret, t).encode() for secret in secrets]
    given = [s.encode("utf-8", "surrogatepass") for s in signatures]
    if not any(hmac.compare_digest(e, g) for e in expected for g in given):
        raise SignatureError("no matching Stripe signature")


# --- GoHighLevel --------------------------------------------------------------------------


def load_ed25519_public_key(material: str) -> Ed25519PublicKey:
    """Load a PEM key, or base64 of the raw 32-byte key or of its DER SubjectPublicKeyInfo.

    Raises:
        SignatureError: the configured material is not an Ed25519 public key.
    """
    try:
        if "BEGIN" in material:
            key: Any = serialization.load_pem_public_key(material.encode())
        else:
            raw = base64.b64decode(material.strip(), validate=True)
            if len(raw) == 32:
                key = Ed25519PublicKey.from_public_bytes(raw)
            else:
                key = serialization.load_der_public_key(raw)
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm) as exc:
        raise SignatureError("configured ghl Ed25519 key is unreadable") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError("configured ghl Ed25519 key is not an Ed25519 key")
    return key


def load_rsa_public_key(pem: str) -> RSAPublicKey:
    """Load an RSA public key (PEM, SubjectPublicKeyInfo or PKCS#1).

    Raises:
        SignatureError: the configured material is not an RSA public key.
    """
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError("configured ghl RSA key is unreadable") from exc
    if not isinstance(key, RSAPublicKey):
        raise SignatureError("configured ghl RSA key is not an RSA key")
    return key


def ghl_signed_messages(body: bytes) -> list[bytes]:
    """What GHL may have signed: the raw body, then its compact re-serialisation.

    GHL's verifiers hash ``JSON.stringify(body)``; for a body GHL itself serialised that
    equals the raw bytes, but a proxy may have re-indented it.
    """
    messages = [body]
    try:
        # A lone surrogate (from a "\\ud800" escape) has no UTF-8 form: no second candidate.
        compact = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return messages
    if compact != body:
        messages.append(compact)
    return messages


def _decode_signature(value: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise SignatureError("signature is not base64") from exc


def verify_ghl_ed25519(body: bytes, signature: str, key: Ed25519PublicKey) -> None:
    """Raise unless ``signature`` (base64) is ``key``'s Ed25519 signature of the body."""
    raw = _decode_signature(signature)
    for message in ghl_signed_messages(body):
        try:
            key.verify(raw, message)
        except InvalidSignature:
            continue
        return
    raise SignatureError("invalid x-ghl-signature")


def verify_ghl_rsa(body: bytes, signature: str, key: RSAPublicKey) -> None:
    """Raise unless ``signature`` (base64) is ``key``'s RSA PKCS#1 v1.5 SHA-256 signature."""
    raw = _decode_signature(signature)
    for message in ghl_signed_messages(body):
        try:
            key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            continue
        return
    raise SignatureError("invalid x-wh-signature")


def sign_ghl_ed25519(body: bytes, private_key: Ed25519PrivateKey) -> str:
    """The ``x-ghl-signature`` header value for ``body`` (tests and fixtures)."""
    return base64.b64encode(private_key.sign(body)).decode()


def sign_ghl_rsa(body: bytes, private_key: RSAPrivateKey) -> str:
    """The legacy ``x-wh-signature`` header value for ``body`` (tests and fixtures)."""
    signature = private_key.sign(body, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def public_key_pem(private_key: Ed25519PrivateKey | RSAPrivateKey) -> str:
    """The SubjectPublicKeyInfo PEM of a key pair, as stored in tenant credentials."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
