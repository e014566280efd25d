"""The adapter contract for every source, and fuzzing: bad input only ever yields
ConversionEvent, Ignored or WebhookRejectedError."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import producers.adapters as adapters_package
from capi_stream.errors import PermanentError
from capi_stream.event import ConversionEvent
from producers.adapters import (
    ADAPTERS,
    Ignored,
    PayloadError,
    SignatureError,
    WebhookAdapter,
    WebhookRejectedError,
)
from producers.adapters.base import load_json
from tests.fixtures.webhooks import FIXTURES, encode, make_request

SOURCES = ["chatbot", "ghl", "perspective", "stripe", "denefits"]
FIXTURE_PAYLOADS = {
    source: [json.loads(p.read_bytes()) for p in sorted((FIXTURES / source).glob("*.json"))]
    for source in SOURCES
}
CREDENTIALS: dict[str, dict[str, Any]] = {
    "chatbot": {"secret": "s"},
    "perspective": {"secret": "s"},
    "denefits": {"secret": "s"},
    "stripe": {"webhook_secret": "whsec_s"},
    "ghl": {"workflow_secret": "s", "public_key_ed25519": "AAAA", "public_key_rsa": "x"},
}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Field names the adapters read, so random objects reach past the first lookup.
KEYS = sorted(
    {
        key
        for payloads in FIXTURE_PAYLOADS.values()
        for payload in payloads
        for key in json.dumps(payload).split('"')[1::2]
        if key.isidentifier() or "." in key
    }
)[:400]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", " ", "paid", "contract.created", "2026-01-28T20:00:00Z", "usd"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=25,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def mutated_fixtures(draw: st.DrawFn, source: str) -> bytes:
    """A real fixture with a few subtrees replaced by random JSON or removed."""
    payload = copy.deepcopy(draw(st.sampled_from(FIXTURE_PAYLOADS[source])))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(payload)[1:]  # never the root: test_fuzz_random_json covers that
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        replacement = draw(json_values)
        try:
            parent = payload
            for step in path[:-1]:
                parent = parent[step]
            if draw(st.booleans()) and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = replacement
        except (KeyError, IndexError, TypeError):
            continue
    return encode(payload)


def _check(adapter: WebhookAdapter, body: bytes, headers: dict[str, str] | None = None) -> None:
    request = make_request(body, headers)
    try:
        result = adapter.parse(request)
    except WebhookRejectedError as exc:
        assert exc.status_code in (400, 422)
    else:
        assert isinstance(result, ConversionEvent | Ignored)
        if isinstance(result, ConversionEvent):
            assert result.source == adapter.source
    delivery = adapter.delivery_id(request)
    assert delivery is None or isinstance(delivery, str)
    try:
        adapter.verify(request, CREDENTIALS[adapter.source])
    except SignatureError as exc:
        assert exc.status_code == 401


@pytest.mark.parametrize("source", SOURCES)
@FUZZ
@given(data=st.data())
def test_fuzz_mutated_fixtures(source: str, data: st.DataObject) -> None:
    _check(ADAPTERS[source], data.draw(mutated_fixtures(source)))


@pytest.mark.parametrize("source", SOURCES)
@FUZZ
@given(payload=json_values)
def test_fuzz_random_json(source: str, payload: Any) -> None:
    _check(ADAPTERS[source], encode(payload))


@pytest.mark.parametrize("source", SOURCES)
@FUZZ
@given(
    body=st.binary(max_size=200),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "x-capi-secret",
                "authorization",
                "stripe-signature",
                "x-ghl-signature",
                "x-wh-signature",
            ]
        ),
        st.text(max_size=40),
    ),
)
def test_fuzz_raw_bytes_and_headers(source: str, body: bytes, headers: dict[str, str]) -> None:
    _check(ADAPTERS[source], body, headers)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,  # recursion
        b'{"a": ' + b"9" * 5000 + b"}",  # beyond int max str digits
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"created": 1e999999999, "amount": 1e999999999, "subscriber_id": 1e999999999}',
        "\ufeff{}".encode(),
        b"\xff\xfe",
    ],
)
@pytest.mark.parametrize("source", SOURCES)
def test_hostile_bodies(source: str, body: bytes) -> None:
    _check(ADAPTERS[source], body)


def test_registry_is_keyed_by_source() -> None:
    assert sorted(ADAPTERS) == sorted(SOURCES)
    for name, adapter in ADAPTERS.items():
        assert adapter.source == name


def test_all_matches_the_public_names() -> None:
    public = {n for n in vars(adapters_package) if not n.startswith("_")}
    modules = {"base", "chatbot", "denefits", "ghl", "money", "perspective", "signatures", "stripe"}
    assert set(adapters_package.__all__) == public - modules - {"annotations"}


def test_error_tree() -> None:
    assert issubclass(WebhookRejectedError, PermanentError)
    assert SignatureError("x").status_code == 401
    assert PayloadError("x").status_code == 400
    error = PayloadError("missing identity", status_code=422)
    assert (error.status_code, error.reason, str(error)) == (422, "missing identity", error.reason)


def test_signatures_imports_first_without_a_cycle() -> None:
    root = Path(__file__).parents[2]
    for module in (
        "producers.adapters.signatures",
        "producers.adapters.stripe",
        "producers.adapters",
    ):
        subprocess.run([sys.executable, "-c", f"import {module}"], cwd=root, check=True)


def _stdlib_json(body: bytes) -> Any:
    return json.loads(body, parse_float=Decimal)


def _same(left: Any, right: Any) -> bool:
    """Equal, and of the same types all the way down (``1 == 1.0`` is not enough)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(_same, left, right))
    return bool(left == right)


@pytest.mark.parametrize(
    "body",
    [
        b'{"amount": 12.50, "n": 3}',
        b'{"v": [1, 2.0, -0.5, 1e3, 1E-2]}',
        b'{"big": 123456789012345678901234567890}',  # orjson would give a float
        b'{"edge": 18446744073709551615, "low": -9223372036854775808}',
        b'{"api_version": "2025-08-27.basil", "created": 1700000000}',
        b'{"s": "\\ud83d\\ude00", "n": null, "t": true}',
        b'\xef\xbb\xbf{"bom": 1}',
    ],
)
def test_load_json_is_the_standard_library_with_exact_decimals(body: bytes) -> None:
    assert _same(load_json(body), _stdlib_json(body))


@pytest.mark.parametrize("body", [b"", b"{", b'{"a": NaN}', b'{"a": 1}x', b"\xff"])
def test_load_json_refuses_what_the_standard_library_refuses(body: bytes) -> None:
    with pytest.raises(PayloadError):
        load_json(body)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_load_json_matches_the_standard_library(value: Any) -> None:
    body = json.dumps(value).encode()
    assert _same(load_json(body), _stdlib_json(body))
