"""`fte serve` (API and worker in one process, the embedded default), `fte api` and
`fte worker` (separately, as Kubernetes runs them).

Shutdown, on SIGTERM or Ctrl-C: the API stops accepting and finishes its requests, the
worker stops consuming and finishes the messages in flight (their effects stored and
acknowledged), the relay stops, then the runtime closes (embedded PostgreSQL last).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Generator
from pathlib import Path

import uvicorn
import uvloop

from fte_core.errors import FteError
from fte_core.models import Channel
from service.app import create_app
from service.bootstrap import Runtime, bootstrap
from service.cli_mcp import http_mount
from service.digest_job import digest_schedule
from service.handlers import TOPICS, event_handler
from service.local_secrets import load_or_create
from service.logs import configure_logging
from service.probes import probe_server
from service.rules_watch import watch_rules
from service.settings import Settings, load_settings
from service.state import Probe, ServiceState
from service.worker import WorkerHealth, run_worker

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling (it re-raises the signal after shutdown,
    which would end the process before the worker drains and PostgreSQL stops)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def admin_token(settings: Settings) -> tuple[str, bool]:
    """The configured token, or one made once in the data directory (True: made here)."""
    if settings.admin_token:
        return settings.admin_token, False
    path = settings.secret_file("admin-token")
    existed = path.exists()
    return load_or_create(path, 32), not existed


async def serve(settings: Settings, *, api: bool = True, worker: bool = True) -> None:
    """With both API and worker over PostgreSQL, the worker runs as a child process (its
    own event loop and connections), so answering never slows intake down; in memory, or
    alone, it runs in this process."""
    token, made = admin_token(settings)
    stop = asyncio.Event()
    child = api and worker and settings.storage != "memory"
    runtime = await bootstrap(
        settings, consume=TOPICS if worker and not child else (), queue_replies=True
    )
    try:
        health = WorkerHealth()
        tasks = _background(runtime, stop, health) if worker and not child else []
        rules = Path(settings.rules_dir)
        tasks.append(asyncio.create_task(watch_rules(runtime.policy, rules, stop)))
        if api:  # the API pods make the daily digest (stored once per day, see digest_job)
            email = runtime.outbound.senders.get(Channel.EMAIL)
            tasks.append(asyncio.create_task(digest_schedule(runtime, stop, sender=email)))
        supervisor = WorkerProcess() if child else None
        if supervisor is not None:
            tasks.append(asyncio.create_task(supervisor.run(stop)))
        probe = supervisor.probe if supervisor else _probe(health, tasks) if worker else None
        if probe is not None and not api and os.environ.get(NOTIFY):
            tasks.append(asyncio.create_task(_tell_parent(probe, stop)))
        state = ServiceState(
            runtime=runtime,
            admin_token=token,
            bus=runtime.buses.kind,
            worker=probe,
        )
        server = _server(settings, state) if api else None
        probes = None  # a worker alone listens only for the kubelet and Prometheus
        if server is None and settings.probe_port is not None:
            probes = probe_server(state, settings.host, settings.probe_port)
            probes.start()
        _on_signals(stop, server)
        # Everything loaded so far (rules, models, the app) lives as long as the process:
        # out of the collector's reach, a full collection no longer walks it in the
        # middle of a request (tens of milliseconds with the rule engine loaded).
        gc.freeze()
        _announce(settings, runtime, token, made, api=api, worker=worker)
        if server is not None:
            await server.serve()
            stop.set()
        else:
            await stop.wait()
        await asyncio.gather(*tasks)
        if probes is not None:
            await probes.close()
    finally:
        await runtime.aclose()
    print("worker stopped cleanly" if not api else "stopped cleanly", file=sys.stderr)


# Set for a supervised worker child: it reports its readiness on stdout every
# HEARTBEAT seconds, so the parent's /api/v1/ready shows the child's own state (starting
# while it bootstraps, "not polling" when its loop is stuck), not merely that it exists.
NOTIFY = "FTE_WORKER_NOTIFY"
HEARTBEAT = 2.0


async def _tell_parent(probe: Probe, stop: asyncio.Event) -> None:
    while not stop.is_set():
        sys.stdout.write(f"{await probe()}\n")
        sys.stdout.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEARTBEAT)


# The worker child's niceness, above the service's own: when both compete for the CPU, the
# customer waiting on the form's 201 goes first; a reply a few milliseconds later costs
# nobody anything. Relative: set as an absolute 10, a service started under `nice -n 19`
# gave its worker the higher priority (10 < 19) and intake waited for the worker's work.
WORKER_NICENESS = 10
_LOWEST_PRIORITY = 19  # the largest niceness Linux has


def _lower_priority(pid: int) -> None:
    own = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, pid, min(own + WORKER_NICENESS, _LOWEST_PRIORITY))
    except OSError as exc:  # a container without the permission: same priority, logged
        log.warning("worker child keeps the service's CPU priority: %s", exc)


class WorkerProcess:
    """`fte worker` as a child process, restarted if it dies; SIGTERM'd and awaited (it
    drains its in-flight messages) when the service stops."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.status = "starting"
        self.heard = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.status = "starting"
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "service.cli",
                "worker",
                stdout=asyncio.subprocess.PIPE,
                env={**os.environ, NOTIFY: "1"},
            )
            _lower_priority(self.proc.pid)
            listening = asyncio.create_task(self._listen(self.proc))
            waiting = asyncio.create_task(self.proc.wait())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if stop.is_set():
                if self.proc.returncode is None:
                    self.proc.send_signal(signal.SIGTERM)
                await waiting
                await listening
                return
            await listening
            self.restarts += 1
            log.error("worker process exited with %s; restarting", self.proc.returncode)
            await asyncio.sleep(min(30.0, 2.0**self.restarts))

    async def _listen(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            self.status = line.decode("utf-8", "replace").strip() or self.status
            self.heard = time.monotonic()

    async def probe(self) -> str:
        if self.proc is None:
            return "starting"
        if self.proc.returncode is not None:
            return f"exited with {self.proc.returncode}, restarting"
        if self.heard and time.monotonic() - self.heard > 5 * HEARTBEAT:
            return "not responding"
        return self.status


def _background(
    runtime: Runtime, stop: asyncio.Event, health: WorkerHealth
) -> list[asyncio.Task[object]]:
    consumer = runtime.buses.consumer
    assert consumer is not None  # bootstrap(consume=...) made one
    tasks: list[asyncio.Task[object]] = [
        asyncio.create_task(
            run_worker(
                consumer,
                event_handler(
                    runtime.agent,
                    runtime.outbound,
                    max_attempts=runtime.settings.bus_max_attempts,
                ),
                stop=stop,
                concurrency=runtime.settings.worker_concurrency,
                health=health,
            )
        )
    ]
    if runtime.buses.relay is not None:
        tasks.append(asyncio.create_task(runtime.buses.relay.run(stop)))
    return tasks


def _probe(health: WorkerHealth, tasks: list[asyncio.Task[object]]) -> Probe:
    async def probe() -> str:
        failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
        if failed:
            return f"stopped: {failed[0].exception()!r}"
        if health.ready(stale_after=30.0):
            return "ok"
        return "starting" if not health.started else "not polling"

    return probe


def _server(settings: Settings, state: ServiceState) -> _Server:
    @contextlib.asynccontextmanager
    async def given() -> AsyncIterator[ServiceState]:
        yield state

    mcp_route, mcp_init = http_mount()
    app = create_app(
        given,
        max_body_bytes=settings.max_body_bytes,
        extra_routes=[mcp_route],
        on_app_init=[mcp_init],
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=20,
    )
    return _Server(config)


def _on_signals(stop: asyncio.Event, server: _Server | None) -> None:
    loop = asyncio.get_running_loop()

    def shutdown() -> None:
        if server is not None:
            server.should_exit = True
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shutdown)


def _announce(
    settings: Settings, runtime: Runtime, token: str, made: bool, *, api: bool, worker: bool
) -> None:
    parts = []
    if api:
        parts.append(f"serving http://{settings.host}:{settings.port}/ (the support form)")
    if worker:
        parts.append(f"worker consuming {runtime.buses.kind} bus")
    print("; ".join(parts), file=sys.stderr)
    if api and made:
        path = settings.secret_file("admin-token")
        print(f"operators' admin token (made for you, kept in {path}): {token}", file=sys.stderr)
    print("stop with Ctrl-C or SIGTERM (in-flight messages are finished first)", file=sys.stderr)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, api, worker, text in (
        ("serve", True, True, "the API, the web form and a worker in one process"),
        ("api", True, False, "the API and the web form only (Kubernetes: the api pods)"),
        ("worker", False, True, "a worker only (Kubernetes: the worker pods)"),
    ):
        parser = sub.add_parser(
            name,
            help=text,
            description=f"Run {text}. Listens on FTE_HOST:FTE_PORT; stops on SIGTERM or "
            "Ctrl-C after finishing what is in flight.",
        )
        parser.set_defaults(handler=_command(api, worker))


def _command(api: bool, worker: bool) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        configure_logging(logging.INFO, json=True)
        try:
            # uvloop, as uvicorn picks when it owns the loop: a third less CPU per request
            uvloop.run(serve(load_settings(), api=api, worker=worker))
        except FteError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0

    return run
