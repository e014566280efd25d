"""The secret box: seal/open, MultiFernet rotation, and the dev stack's kept key file."""

from __future__ import annotations

from pathlib import Path

import pytest

from capi_stream.errors import DependencyUnavailableError, SecretsKeyError
from capi_stream.secrets import (
    SecretBox,
    build_secret_box,
    generate_key,
    keep_key_file,
    read_key_file,
)

CREDENTIALS = {"pixel_id": "1", "capi_access_token": "EAAB-secret", "graph_url": None}


def _box(keys: str) -> SecretBox:
    box = build_secret_box(keys)
    assert box is not None
    return box


@pytest.mark.parametrize("keys", [None, "", " , "])
def test_no_key_is_no_box(keys: str | None) -> None:
    assert build_secret_box(keys) is None


def test_seal_opens_under_any_listed_key_and_reseal_moves_to_the_first() -> None:
    old, new = generate_key(), generate_key()
    sealed = _box(old).seal(CREDENTIALS)
    assert "EAAB-secret" not in sealed
    both = _box(f" {new} , {old} ")
    assert both.open(sealed) == CREDENTIALS
    resealed = both.reseal(sealed)
    assert _box(new).open(resealed) == CREDENTIALS
    with pytest.raises(SecretsKeyError, match="cannot be decrypted"):
        _box(old).open(resealed)
    with pytest.raises(SecretsKeyError, match="cannot be decrypted"):
        _box(generate_key()).reseal(sealed)


def test_a_key_error_is_never_the_events_fault() -> None:
    # The worker pauses and the webhook app answers 503 on it; nothing is dead-lettered.
    assert issubclass(SecretsKeyError, DependencyUnavailableError)


def test_the_dev_key_file_is_made_once_owner_only_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secrets.key"
    assert read_key_file(path) is None
    key = keep_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert keep_key_file(path) == key == read_key_file(path)  # a restart keeps the key
    assert _box(key).open(_box(key).seal({"a": "b"})) == {"a": "b"}
