"""What the running service holds: the runtime, the operators' token, and the parts whose
health `/api/v1/ready` reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec

from fte_core.errors import FteError
from service.bootstrap import Runtime, channel_readiness

Probe = Callable[[], Awaitable[str]]  # "ok", or what is wrong


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    ready: bool
    database: str
    bus: str
    worker: str
    ruleset_version: str
    llm: str
    knowledge_base: str
    channels: dict[str, str]


@dataclass(slots=True)
class ServiceState:
    runtime: Runtime
    admin_token: str
    bus: str = "none"
    worker: Probe | None = None  # None: this process runs no worker (`fte api`)
    channels: dict[str, str] = field(default_factory=dict)

    async def readiness(self) -> Readiness:
        database = await self._database()
        worker = await self.worker() if self.worker is not None else "not in this process"
        settings = self.runtime.settings
        return Readiness(
            ready=database == "ok" and worker in ("ok", "not in this process"),
            database=database,
            bus=self.bus,
            worker=worker,
            ruleset_version=self.runtime.policy.version,
            llm=f"model {settings.llm_model}" if settings.llm_model else "offline responder",
            knowledge_base=(
                f"{self.runtime.ingest_report.unchanged + self.runtime.ingest_report.added} chunks"
                if self.runtime.ingest_report
                else "not ingested by this process"
            ),
            channels={**channel_readiness(settings), **self.channels},
        )

    async def _database(self) -> str:
        try:
            await self.runtime.store.get_ticket("TKT-000000")
        except FteError as exc:
            return f"unavailable: {type(exc).__name__}"
        return "ok"
