"""Shared fixtures: worlds are closed after each test; caches live in tmp_path, never in $HOME."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MANIPSTACK_CACHE", str(tmp_path / "cache"))
