"""Every package's ``__all__`` names exactly what it exports, and every name resolves."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ["capi_stream", "meta_capi", "producers", "consumers", "storage"]


@pytest.mark.parametrize("package", PACKAGES)
def test_all_names_resolve(package: str) -> None:
    module = importlib.import_module(package)
    names = module.__all__
    assert names, f"{package} exports nothing"
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(module, name) is not None, f"{package}.{name}"


@pytest.mark.parametrize("package", ["capi_stream", "meta_capi", "producers", "storage"])
def test_every_public_class_and_function_is_listed(package: str) -> None:
    module = importlib.import_module(package)
    imported = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith(package)
        and not isinstance(value, type(importlib))
    }
    # Constants carry no __module__; every class and function imported must be listed.
    assert imported <= set(module.__all__), imported - set(module.__all__)
