"""Fixtures of the migration tests (real servers come from the root conftest)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from queuestore import StorageConfig
from tests.servers import RedisServer

from .helpers import redis_backend, two_backend_config, unique

ConfigMaker = Callable[[str, str], tuple[str, StorageConfig]]


@pytest.fixture
def redis_pair(redis_server: RedisServer) -> ConfigMaker:
    """``redis_pair(src_type, dst_type) -> (queue, config)``: both on the session server, under
    one fresh key prefix each (so a test can DUMP exactly its keys)."""

    def make(src_type: str, dst_type: str) -> tuple[str, StorageConfig]:
        queue = unique("mq")
        src = redis_backend(src_type, redis_server.url, unique("qs-mig-src") + ":")
        dst = redis_backend(dst_type, redis_server.url, unique("qs-mig-dst") + ":")
        return queue, two_backend_config(queue, src, dst)

    return make
