"""A small OpenAI-compatible HTTP server on loopback, for tests and benchmarks.

Real HTTP, real JSON: litellm (or httpx) talks to it exactly as to a provider, so tests
cover the wire path, retries, fallbacks and timeouts without any network. It runs in a
background thread (stdlib `ThreadingHTTPServer`); every request is recorded.

    with OpenAICompatServer(reply="Go to Settings. SOURCES: kb-1") as server:
        litellm.acompletion(model="openai/test", api_base=server.base_url, api_key="x", ...)
        server.requests[0].chat.messages

Behaviour knobs, all plain attributes that tests may change between calls:
- `reply`: the assistant text, or a function of the decoded request returning it;
- `status`: HTTP status for every chat call (200 answers; anything else returns an
  OpenAI-style error body);
- `model_status`: per-model status overriding `status`, keyed by the model name the
  server sees (litellm strips the provider prefix: "openai/test" arrives as "test");
- `delay`: seconds to wait before answering (to provoke client timeouts);
- `error_message`: the message of error responses (e.g. one echoing a credential).

`python tests/openai_server.py [--port N] [--reply TEXT]` serves in the foreground and
prints its base URL on the first line (benchmarks run it in another process so the
server does not compete with the client for the GIL).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import msgspec


class WireMessage(msgspec.Struct, frozen=True):
    role: str
    content: str | None = None


class ChatRequestBody(msgspec.Struct, frozen=True):
    model: str
    messages: tuple[WireMessage, ...]
    temperature: float | None = None
    max_tokens: int | None = None
    stream: bool = False


class EmbeddingRequestBody(msgspec.Struct, frozen=True):
    model: str
    input: str | tuple[str, ...]


class RecordedRequest(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    chat: ChatRequestBody | None = None
    embedding: EmbeddingRequestBody | None = None


ReplyFn = Callable[[ChatRequestBody], str]


class _Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class _ReplyMessage(msgspec.Struct):
    role: str
    content: str


class _Choice(msgspec.Struct):
    index: int
    message: _ReplyMessage
    finish_reason: str


class _Completion(msgspec.Struct):
    id: str
    object: str
    created: int
    model: str
    choices: list[_Choice]
    usage: _Usage


class _EmbeddingItem(msgspec.Struct):
    object: str
    index: int
    embedding: list[float]


class _EmbeddingResponse(msgspec.Struct):
    object: str
    data: list[_EmbeddingItem]
    model: str
    usage: _Usage


class _ErrorDetail(msgspec.Struct):
    message: str
    type: str
    code: int


class _Error(msgspec.Struct):
    error: _ErrorDetail


def count_tokens(text: str) -> int:
    """The server's token count: whitespace-separated words (deterministic, cheap)."""
    return len(text.split())


def fake_embedding(text: str, dimension: int) -> list[float]:
    """A deterministic unit-free vector per text, so equal texts embed equally."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(dimension)]


class OpenAICompatServer:
    def __init__(
        self,
        reply: str | ReplyFn = "OK",
        *,
        status: int = 200,
        model_status: Mapping[str, int] | None = None,
        delay: float = 0.0,
        embedding_dim: int = 8,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.reply = reply
        self.status = status
        self.model_status: dict[str, int] = dict(model_status or {})
        self.delay = delay
        self.error_message: str | None = None
        self.embedding_dim = embedding_dim
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def chat_requests(self) -> list[ChatRequestBody]:
        with self._lock:
            return [r.chat for r in self.requests if r.chat is not None]

    def start(self) -> OpenAICompatServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the command-line mode)."""
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping on `delay`
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAICompatServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- request handling (called from the server's threads) ---------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _wait(self) -> None:
        if self.delay > 0:
            self._stopping.wait(self.delay)

    def _chat_response(self, chat: ChatRequestBody) -> tuple[int, bytes]:
        status = self.model_status.get(chat.model, self.status)
        if status != 200:
            message = self.error_message or f"configured failure for model {chat.model}"
            return status, _error(status, message)
        if chat.stream:
            return 400, _error(400, "streaming is not supported by this test server")
        text = self.reply(chat) if callable(self.reply) else self.reply
        prompt = sum(count_tokens(m.content or "") for m in chat.messages)
        completion = count_tokens(text)
        body = _Completion(
            id=f"chatcmpl-{len(self.requests)}",
            object="chat.completion",
            created=int(time.time()),
            model=chat.model,
            choices=[_Choice(0, _ReplyMessage("assistant", text), "stop")],
            usage=_Usage(prompt, completion, prompt + completion),
        )
        return 200, msgspec.json.encode(body)

    def _embedding_response(self, request: EmbeddingRequestBody) -> tuple[int, bytes]:
        texts = (request.input,) if isinstance(request.input, str) else request.input
        data = [
            _EmbeddingItem("embedding", i, fake_embedding(t, self.embedding_dim))
            for i, t in enumerate(texts)
        ]
        tokens = sum(count_tokens(t) for t in texts)
        body = _EmbeddingResponse("list", data, request.model, _Usage(tokens, 0, tokens))
        return 200, msgspec.json.encode(body)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        route = path.split("?", 1)[0].rstrip("/")
        try:
            if route.endswith("/chat/completions"):
                chat = msgspec.json.decode(body, type=ChatRequestBody)
                self._record(RecordedRequest(path=path, headers=headers, body=body, chat=chat))
                self._wait()
                return self._chat_response(chat)
            if route.endswith("/embeddings"):
                emb = msgspec.json.decode(body, type=EmbeddingRequestBody)
                self._record(RecordedRequest(path=path, headers=headers, body=body, embedding=emb))
                self._wait()
                return self._embedding_response(emb)
        except msgspec.DecodeError as exc:
            self._record(RecordedRequest(path=path, headers=headers, body=body))
            return 400, _error(400, f"invalid request body: {exc}")
        self._record(RecordedRequest(path=path, headers=headers, body=body))
        return 404, _error(404, f"no route {route}")


def _error(status: int, message: str) -> bytes:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return msgspec.json.encode(_Error(_ErrorDetail(message, kind, status)))


def _handler_for(server: OpenAICompatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real provider
        disable_nagle_algorithm = True  # headers and body leave at once: no 40 ms stalls

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = server.handle(self.path, headers, body)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (e.g. its timeout)

        def log_message(self, format: str, *args: object) -> None:
            """Silence per-request stderr lines; tests read `server.requests` instead."""

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reply", default="OK")
    args = parser.parse_args()
    server = OpenAICompatServer(reply=args.reply, port=args.port)
    print(server.base_url, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
