"""Shared fixtures: the scripted backend for unit tests, temporary output folders."""

from __future__ import annotations

import pytest

from widthdepth.backends.mock import MockBackend
from widthdepth.config import RunConfig


@pytest.fixture
def mock_backend() -> MockBackend:
    return MockBackend()


@pytest.fixture
def make_config(tmp_path):
    def make(**values) -> RunConfig:
        values.setdefault("model", "mock:")
        values.setdefault("out", str(tmp_path / "out"))
        values.setdefault("problems", 3)
        return RunConfig(**values)

    return make
