"""`fte worker` as the worker pods run it: with FTE_PROBE_PORT it answers the kubelet's
probes and Prometheus, serves nothing else, and stops cleanly on SIGTERM. Without it, it
listens on nothing (two roles on one machine never fight over a port)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import ROOT

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_worker(data_dir: Path, **env: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FTE_")}
    environ.update(FTE_STORAGE="memory", FTE_DATA_DIR=str(data_dir), FTE_EMBEDDER="hashing")
    environ.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "worker"],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    proc = start_worker(tmp_path, FTE_PROBE_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        try:
            if httpx.get(f"{url}/api/v1/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the worker's probes never became ready"
        time.sleep(0.2)
    try:
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_the_probe_port_serves_health_readiness_and_metrics(
    worker: tuple[subprocess.Popen[str], str],
) -> None:
    proc, url = worker
    assert httpx.get(f"{url}/api/v1/health").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/api/v1/ready").json()
    assert ready["ready"] is True
    assert ready["worker"] == "ok"
    metrics = httpx.get(f"{url}/metrics")
    assert metrics.status_code == 200
    assert "process_resident_memory_bytes" in metrics.text
    # a worker pod takes no customer traffic
    assert httpx.get(f"{url}/").status_code == 404
    form = {"name": "A", "email": "a@example.com", "subject": "s", "message": "m" * 20}
    assert httpx.post(f"{url}/api/v1/support/form", json=form).status_code == 404

    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "stopped cleanly" in err


def test_without_a_probe_port_the_worker_listens_on_nothing(tmp_path: Path) -> None:
    port = free_port()
    proc = start_worker(tmp_path, FTE_PORT=str(port))
    try:
        deadline = time.monotonic() + 60
        err = ""
        while "worker consuming" not in err:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the worker never started"
            assert proc.stderr is not None
            err += proc.stderr.readline()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
