"""A fault-injecting backend type for manager tests: not a mock of Redis, a memory backend that
fails, hangs or breaks its maintenance loop on request."""

from __future__ import annotations

from typing import Literal

import anyio
import msgspec

import queuestore as qs
from queuestore.backends.memory import MemoryBackend, MemoryOptions

Mode = Literal["ok", "raise", "hang"]
SECRET = "pa55-w0rd-Xy"


class FaultOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    health: Mode = "ok"
    stats: Mode = "ok"
    maintenance: Literal["ok", "raise"] = "ok"
    fail_create: bool = False
    namespace: str | None = None


class FaultyBackend(MemoryBackend):
    def __init__(self, config: qs.BackendConfig, faults: FaultOptions) -> None:
        super().__init__(config, MemoryOptions(namespace=faults.namespace))
        self.faults = faults
        self.maintenance_runs = 0

    async def health(self) -> qs.HealthStatus:
        if self.faults.health == "raise":
            raise RuntimeError(f"cannot reach redis://admin:{SECRET}@10.0.0.1:6379/0")
        if self.faults.health == "hang":
            await anyio.sleep_forever()
        return await super().health()

    async def stats(self) -> qs.BackendStats:
        if self.faults.stats == "raise":
            raise qs.ConnectionFailedError(self.name, "stats", f"password={SECRET} refused")
        if self.faults.stats == "hang":
            await anyio.sleep_forever()
        return await super().stats()

    async def run_maintenance(self) -> None:
        self.maintenance_runs += 1
        if self.faults.maintenance == "raise":
            raise RuntimeError(f"maintenance broke: redis://:{SECRET}@h")
        await super().run_maintenance()


class FaultyFactory(qs.BackendFactory[FaultOptions]):
    options_type = FaultOptions

    def __init__(self) -> None:
        self.created: list[FaultyBackend] = []

    async def create(self, config: qs.BackendConfig) -> FaultyBackend:
        faults = self.parse(config)
        if faults.fail_create:
            raise qs.ConnectionFailedError(config.name, "connect", "refused")
        backend = FaultyBackend(config, faults)
        await backend.open()
        self.created.append(backend)
        return backend
