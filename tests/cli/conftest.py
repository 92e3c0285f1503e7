"""Fixtures of the CLI tests. The tests need the ``cli`` extra (click, rich): the nox ``tests``
session installs it; without it each test module is skipped, saying so (``needs_cli``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers import RedisServer

from .helpers import unique, write_config


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test: its own state dir, no $QUEUESTORE_CONFIG, and a working dir without storage.yaml."""
    monkeypatch.setenv("QUEUESTORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("QUEUESTORE_CONFIG", raising=False)
    monkeypatch.delenv("QUEUESTORE_URL", raising=False)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


@pytest.fixture
def queue() -> str:
    return unique("cliq")


@pytest.fixture
def config_file(tmp_path: Path, redis_server: RedisServer, queue: str) -> Path:
    """A config: ``queue`` on ``src`` (redis-lists); ``dst`` is redis-streams; same server."""
    return write_config(tmp_path / "storage.yaml", redis_server.url, queue)
