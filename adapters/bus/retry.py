"""The retry policy every bus shares: how often, and how long to wait between tries."""

from __future__ import annotations

import msgspec

from fte_core.errors import ConfigError


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    max_attempts: int = 5  # deliveries before the event is dead-lettered
    backoff: float = 1.0  # seconds before the second delivery; doubles each time
    max_backoff: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.backoff < 0 or self.max_backoff < self.backoff:
            raise ConfigError(f"backoff: need 0 <= backoff <= max_backoff ({self})")

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed delivery."""
        return float(min(self.max_backoff, self.backoff * 2 ** max(0, attempts - 1)))

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
