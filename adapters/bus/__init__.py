"""Event buses (SPEC 7): in-memory, the PostgreSQL queue (the embedded default) and Kafka.

All three implement `fte_core.ports.EventBus` and `EventConsumer` with one contract:
at-least-once, in order per key, retried with exponential backoff and dead-lettered with
the error after `RetryPolicy.max_attempts` deliveries.
"""
