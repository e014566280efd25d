"""fbc construction and pass-through (Meta subcode 2804001 on malformed click ids)."""

from __future__ import annotations

import pytest

from meta_capi.fbc import build_fbc, fbc_from, is_valid_fbc
from meta_capi.validation import MetaEventValidationError

MS = 1554763741205


def test_build_fbc_keeps_case() -> None:
    assert build_fbc("IwAR2F4-dbP0l7_x", MS) == f"fb.1.{MS}.IwAR2F4-dbP0l7_x"
    assert build_fbc("AbC", MS, subdomain_index=2) == f"fb.2.{MS}.AbC"


@pytest.mark.parametrize(
    ("fbclid", "ms", "index"),
    [
        (f"fb.1.{MS}.IwAR", MS, 1),  # already an fbc
        ("IwAR%20junk", MS, 1),
        ("IwAR.extra", MS, 1),
        (" IwAR", MS, 1),
        ("", MS, 1),
        ("IwAR", 1554763741, 1),  # seconds, not milliseconds
        ("IwAR", MS, 10),
        ("IwAR", MS, -1),
    ],
)
def test_build_fbc_rejects(fbclid: str, ms: int, index: int) -> None:
    with pytest.raises(MetaEventValidationError) as info:
        build_fbc(fbclid, ms, index)
    assert info.value.subcode == 2804001
    assert info.value.field == "user_data.fbc"


def test_fbc_from_passes_existing_fbc_through() -> None:
    existing = f"fb.1.{MS}.IwAR2F4-dbP0l7"
    assert fbc_from(existing, 1_700_000_000_000) == existing
    with_appendix = f"fb.1.{MS}.IwAR2F4.AQICAQMC"
    assert fbc_from(with_appendix, 1_700_000_000_000) == with_appendix


def test_fbc_from_wraps_bare_fbclid() -> None:
    assert fbc_from("IwAR", MS) == f"fb.1.{MS}.IwAR"


@pytest.mark.parametrize(
    "value", [f"fb.1.{MS}.fb.1.{MS}.IwAR", f"fb.1.{MS}", "fb.1.123.IwAR", f"fb.1.{MS}.Iw AR"]
)
def test_fbc_from_rejects_malformed_fbc(value: str) -> None:
    assert not is_valid_fbc(value)
    with pytest.raises(MetaEventValidationError) as info:
        fbc_from(value, MS)
    assert info.value.subcode == 2804001
