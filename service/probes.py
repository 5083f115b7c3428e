"""The worker's own listener (`fte worker` with FTE_PROBE_PORT set): liveness, readiness and
/metrics for the kubelet and Prometheus, and nothing else. A worker pod takes no customer
traffic, so it serves no form, API or webhook; readiness says whether it is still polling
the bus (service.worker.WorkerHealth) and whether the database answers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator

import uvicorn
from litestar import Litestar, MediaType, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from service import api
from service.state import ServiceState


def probe_app(state: ServiceState, registry: CollectorRegistry = REGISTRY) -> Litestar:
    """Health, readiness and metrics over `state` (`registry`: by default the process-wide
    one, where prometheus-client's process collectors report memory and CPU)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.service = state
        yield

    @get("/metrics", media_type=MediaType.TEXT, include_in_schema=False)
    async def prometheus() -> Response[bytes]:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST.split(";")[0])

    return Litestar(
        route_handlers=[api.health, api.ready, prometheus],
        lifespan=[lifespan],
        openapi_config=None,
        logging_config=None,  # the process configures logging (service.logs), once
    )


class ProbeServer(uvicorn.Server):
    """uvicorn without its own signal handling: the worker's shutdown drives it. It stays up
    until the worker has drained (`close` after the worker's tasks end), so the kubelet's
    liveness probe keeps passing during a long drain."""

    _task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def start(self) -> None:
        self._task = asyncio.create_task(self.serve())

    async def close(self) -> None:
        self.should_exit = True
        if self._task is not None:
            await self._task


def probe_server(state: ServiceState, host: str, port: int) -> ProbeServer:
    config = uvicorn.Config(
        probe_app(state),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    return ProbeServer(config)
