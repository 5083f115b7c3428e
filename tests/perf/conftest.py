"""Benchmarks reuse the integration suite's PostgreSQL fixtures (one embedded server)."""

from tests.integration.conftest import (  # noqa: F401 - fixtures, found by name
    pg_pool,
    pg_server_url,
    pg_template,
    pg_url,
)
