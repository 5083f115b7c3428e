"""A local stand-in for Twilio's Messages API over real HTTP, for the WhatsApp sender.

`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with the form twilio's Client
sends. Every request is kept; scripted answers (`script`) are served first, in order, then
201 with a fresh message id. Bound to 127.0.0.1 on a free port, in a thread.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

_PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$")


@dataclass(frozen=True)
class Scripted:
    status: int
    code: int | None = None
    message: str = ""


@dataclass
class FakeTwilio:
    base_url: str = ""
    requests: list[dict[str, str]] = field(default_factory=list)
    accepted: list[dict[str, str]] = field(default_factory=list)  # answered 201, with "Sid"
    script: list[Scripted] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        with self.lock:
            self.requests.append(form)
            if self.script:
                step = self.script.pop(0)
                if step.status >= 300:
                    return step.status, {
                        "code": step.code,
                        "message": step.message or "scripted failure",
                        "more_info": f"https://www.twilio.com/docs/errors/{step.code}",
                        "status": step.status,
                    }
            sid = "SM" + uuid.uuid4().hex
            self.accepted.append({**form, "Sid": sid})
        return 201, {
            "sid": sid,
            "status": "queued",
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
        }

    def bodies(self) -> list[str]:
        with self.lock:
            return [a["Body"] for a in self.accepted]


@contextmanager
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(parse_qsl(self.rfile.read(length).decode("utf-8")))
            if not _PATH.match(self.path):
                status, payload = 404, {"code": 20404, "message": "not found", "status": 404}
            else:
                status, payload = fake.answer(form)
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
