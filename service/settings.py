"""Settings from the environment (and mounted secret files): the only place that reads them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from fte_core.errors import ConfigError, ValidationError
from fte_core.identity import normalize_phone
from service.settings_gmail import GMAIL_HELP, GmailSettings, load_gmail_settings

Storage = Literal["auto", "memory", "postgres"]
BusKind = Literal["postgres", "kafka", "memory"]
Positive = Annotated[int, msgspec.Meta(ge=1)]
EmbedderKind = Literal["minilm", "hashing"]
DigestHour = Annotated[int, msgspec.Meta(ge=-1, le=23)]  # -1: no scheduled digest


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    data_dir: str = ".fte"
    rules_dir: str = "rules"
    context_dir: str = "context"
    storage: Storage = "auto"  # auto: FTE_DATABASE_URL if set, else embedded PostgreSQL
    database_url: str | None = None
    llm_model: str | None = None  # any litellm model id; unset: the offline responder
    llm_fallbacks: tuple[str, ...] = ()
    llm_api_base: str | None = None
    llm_api_key: str | None = msgspec.field(default=None)
    llm_timeout: float = 20.0
    embedding_model: str | None = None  # any litellm embedding model; replaces `embedder`
    # the local default: MiniLM (installed by `fte model install`), or the lexical hashing
    # embedder (no model at all); MiniLM not installed falls back to hashing, with a warning
    embedder: EmbedderKind = "minilm"
    model_dir: str | None = None  # default <data_dir>/models
    embedding_dimension: int = 384
    embedding_api_base: str | None = None
    database_connect_timeout: float = 10.0  # seconds before an unreachable database fails
    thread_window_hours: float = 24.0
    acknowledge_hours: float = 4.0  # while a person owns a ticket: one acknowledgement per
    host: str = "127.0.0.1"
    port: int = 8000
    probe_port: Positive | None = None  # `fte worker`: health, readiness, /metrics (Kubernetes)
    public_base_url: str | None = None  # how customers reach us; unset: http://host:port
    admin_token: str | None = None  # operators' bearer token; `fte serve` makes one if unset
    token_secret: str | None = None  # signs ticket access tokens; made in the data dir if unset
    max_body_bytes: int = 1_048_576
    bus: BusKind = "postgres"  # the PostgreSQL queue; kafka needs kafka_bootstrap
    kafka_bootstrap: str | None = None
    kafka_topic_prefix: str = ""
    kafka_partitions: Positive = 6
    kafka_replication: Positive = 1
    kafka_group: str = "fte-worker"
    kafka_idempotent: bool = True  # idempotent producer (acks=all either way)
    bus_max_attempts: Positive = 5  # deliveries before an event is dead-lettered
    bus_visibility_timeout: Annotated[float, msgspec.Meta(gt=0)] = 60.0  # PostgreSQL claim, s
    worker_concurrency: Positive = 32  # events in flight per worker
    # of those, how many compute at once (the rest await the model); 0: no limit
    worker_parallel: Annotated[int, msgspec.Meta(ge=0)] = 2
    kb_threshold: float | None = None  # no-match probability cut (default: calibrated 0.5)
    # WhatsApp through Twilio (bootstrap.make_senders): all three, or the channel is off
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_whatsapp_from: str | None = None  # the sender number, +E164 or whatsapp:+E164
    twilio_api_base: str | None = None  # another Twilio API server (a proxy, a test fake)
    gmail: GmailSettings = GmailSettings()  # GMAIL_* (service.settings_gmail)
    digest_hour: DigestHour = 6  # UTC hour the service makes yesterday's digest
    digest_email: tuple[str, ...] = ()  # operators who get the digest by email
    # alerts (service.monitor): a channel with no customer message for this long alerts;
    # latency and escalation rate are judged over the last window; figures refresh this often
    alert_idle_minutes: Annotated[float, msgspec.Meta(gt=0)] = 120.0
    alert_window_minutes: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    monitor_interval: Annotated[float, msgspec.Meta(gt=0)] = 20.0

    @property
    def models_path(self) -> str:
        return self.model_dir or f"{self.data_dir}/models"

    def __repr__(self) -> str:  # never print a secret
        return f"Settings(data_dir={self.data_dir!r}, storage={self.storage!r}, ...)"

    @property
    def base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    def secret_file(self, name: str) -> Path:
        return Path(self.data_dir) / "secrets" / name


_ENV = {
    "FTE_DATA_DIR": "data_dir",
    "FTE_RULES_DIR": "rules_dir",
    "FTE_CONTEXT_DIR": "context_dir",
    "FTE_STORAGE": "storage",
    "FTE_DATABASE_URL": "database_url",
    "FTE_LLM_MODEL": "llm_model",
    "FTE_LLM_FALLBACKS": "llm_fallbacks",
    "FTE_LLM_API_BASE": "llm_api_base",
    "FTE_LLM_API_KEY": "llm_api_key",
    "FTE_LLM_TIMEOUT": "llm_timeout",
    "FTE_EMBEDDING_MODEL": "embedding_model",
    "FTE_EMBEDDER": "embedder",
    "FTE_MODEL_DIR": "model_dir",
    "FTE_EMBEDDING_DIMENSION": "embedding_dimension",
    "FTE_EMBEDDING_API_BASE": "embedding_api_base",
    "FTE_DATABASE_CONNECT_TIMEOUT": "database_connect_timeout",
    "FTE_THREAD_WINDOW_HOURS": "thread_window_hours",
    "FTE_ACKNOWLEDGE_HOURS": "acknowledge_hours",
    "FTE_KB_THRESHOLD": "kb_threshold",
    "FTE_HOST": "host",
    "FTE_PORT": "port",
    "FTE_PROBE_PORT": "probe_port",
    "FTE_PUBLIC_BASE_URL": "public_base_url",
    "FTE_ADMIN_TOKEN": "admin_token",
    "FTE_TOKEN_SECRET": "token_secret",
    "FTE_MAX_BODY_BYTES": "max_body_bytes",
    "FTE_BUS": "bus",
    "FTE_KAFKA_BOOTSTRAP": "kafka_bootstrap",
    "FTE_KAFKA_TOPIC_PREFIX": "kafka_topic_prefix",
    "FTE_KAFKA_PARTITIONS": "kafka_partitions",
    "FTE_KAFKA_REPLICATION": "kafka_replication",
    "FTE_KAFKA_GROUP": "kafka_group",
    "FTE_KAFKA_IDEMPOTENT": "kafka_idempotent",
    "FTE_BUS_MAX_ATTEMPTS": "bus_max_attempts",
    "FTE_BUS_VISIBILITY_TIMEOUT": "bus_visibility_timeout",
    "FTE_WORKER_CONCURRENCY": "worker_concurrency",
    "FTE_WORKER_PARALLEL": "worker_parallel",
    "TWILIO_ACCOUNT_SID": "twilio_account_sid",
    "TWILIO_AUTH_TOKEN": "twilio_auth_token",
    "TWILIO_WHATSAPP_FROM": "twilio_whatsapp_from",
    "FTE_TWILIO_API_BASE": "twilio_api_base",
    "FTE_DIGEST_HOUR": "digest_hour",
    "FTE_DIGEST_EMAIL": "digest_email",
    "FTE_ALERT_IDLE_MINUTES": "alert_idle_minutes",
    "FTE_ALERT_WINDOW_MINUTES": "alert_window_minutes",
    "FTE_MONITOR_INTERVAL": "monitor_interval",
}
_LISTS = frozenset({"llm_fallbacks", "digest_email"})
_SECRET_FILES = {
    "FTE_DATABASE_URL_FILE": "database_url",
    "FTE_LLM_API_KEY_FILE": "llm_api_key",
    "FTE_ADMIN_TOKEN_FILE": "admin_token",
    "FTE_TOKEN_SECRET_FILE": "token_secret",
    "TWILIO_AUTH_TOKEN_FILE": "twilio_auth_token",
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Decode FTE_* variables; `NAME_FILE` variables point at mounted secrets."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for var, name in _ENV.items():
        value = env.get(var)
        if value is None or value == "":
            continue
        raw[name] = (
            tuple(v.strip() for v in value.split(",") if v.strip()) if name in _LISTS else value
        )
    for var, name in _SECRET_FILES.items():
        path = env.get(var)
        if path:
            try:
                raw[name] = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{var}: cannot read the secret file: {exc.strerror}") from exc
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        field = str(exc).rsplit("`$.", 1)[-1].rstrip("`")
        var = next((v for v, n in _ENV.items() if n == field), field)
        raise ConfigError(f"{var}: {exc}") from exc
    settings = msgspec.structs.replace(settings, gmail=load_gmail_settings(env))
    if settings.database_url is not None:
        check_database_url(settings.database_url)
    if settings.admin_token is not None and len(settings.admin_token) < MIN_ADMIN_TOKEN:
        raise ConfigError(f"FTE_ADMIN_TOKEN: must be at least {MIN_ADMIN_TOKEN} characters")
    if not settings.base_url.startswith(("http://", "https://")):
        raise ConfigError("FTE_PUBLIC_BASE_URL: must start with http:// or https://")
    if settings.max_body_bytes < 1024:
        raise ConfigError("FTE_MAX_BODY_BYTES: must be at least 1024")
    if settings.twilio_whatsapp_from is not None:
        check_whatsapp_from(settings.twilio_whatsapp_from)
    if settings.database_connect_timeout <= 0:
        raise ConfigError("FTE_DATABASE_CONNECT_TIMEOUT: must be a positive number of seconds")
    return settings


def check_whatsapp_from(value: str) -> str:
    """The WhatsApp sender number in E.164 (a `whatsapp:` prefix is accepted)."""
    try:
        return normalize_phone(value)
    except ValidationError as exc:
        raise ConfigError(f"TWILIO_WHATSAPP_FROM: {exc.detail}") from exc


_SCHEMES = ("postgresql://", "postgres://")
MIN_ADMIN_TOKEN = 32


def check_database_url(url: str) -> None:
    """Refuse a malformed URL at once, naming what is wrong and never the URL itself (it
    holds the password)."""
    if "://" not in url and "=" in url:
        return  # libpq's key=value form (host=... dbname=...)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if not url.startswith(_SCHEMES):
        shown = f"{scheme!r}" if scheme and len(scheme) <= 20 else "none"
        raise ConfigError(
            f"FTE_DATABASE_URL: unsupported scheme {shown}; expected"
            " postgresql://user:password@host:port/database (or host=... dbname=...)"
        )
    rest = url.split("://", 1)[1]
    if not rest or (rest.startswith(("/", "?")) and "host=" not in rest):
        raise ConfigError("FTE_DATABASE_URL: no host (expected postgresql://user:password@host/db)")


_HELP = {
    "FTE_DATA_DIR": "where the embedded database lives",
    "FTE_RULES_DIR": "the rule files",
    "FTE_CONTEXT_DIR": "the company dossier",
    "FTE_STORAGE": "auto | memory | postgres",
    "FTE_DATABASE_URL": "a PostgreSQL with pgvector (unset: embedded; or FTE_DATABASE_URL_FILE)",
    "FTE_DATABASE_CONNECT_TIMEOUT": "seconds before an unreachable database fails",
    "FTE_LLM_MODEL": "a litellm model id (unset: the offline responder)",
    "FTE_LLM_FALLBACKS": "comma-separated litellm model ids",
    "FTE_LLM_API_BASE": "an OpenAI-compatible server",
    "FTE_LLM_API_KEY": "its key (or FTE_LLM_API_KEY_FILE)",
    "FTE_LLM_TIMEOUT": "seconds per model call",
    "FTE_EMBEDDING_MODEL": "a litellm embedding model (unset: offline)",
    "FTE_EMBEDDING_DIMENSION": "its dimension",
    "FTE_EMBEDDING_API_BASE": "its server",
    "FTE_THREAD_WINDOW_HOURS": "how long a conversation stays open across channels",
    "FTE_ACKNOWLEDGE_HOURS": "while a person owns a ticket, one acknowledgement per period",
    "FTE_KB_THRESHOLD": "the knowledge base's no-match threshold",
    "FTE_HOST": "where `fte serve`/`fte api` listen",
    "FTE_PORT": "their port",
    "FTE_PROBE_PORT": "`fte worker` serves health, readiness and /metrics here (unset: none)",
    "FTE_PUBLIC_BASE_URL": "how customers reach the service (status links, webhooks)",
    "FTE_ADMIN_TOKEN": "operators' bearer token, 32+ characters (or _FILE; made if unset)",
    "FTE_TOKEN_SECRET": "signs ticket access tokens (or _FILE; made in the data dir if unset)",
    "FTE_MAX_BODY_BYTES": "largest request body accepted",
    "FTE_EMBEDDER": "the local embedder: minilm (semantic) or hashing",
    "FTE_MODEL_DIR": "where `fte model install` put the model",
    "FTE_BUS": "the event bus: postgres, kafka or memory",
    "FTE_KAFKA_BOOTSTRAP": "Kafka brokers host:port[,...] (FTE_BUS=kafka)",
    "FTE_WORKER_CONCURRENCY": "events a worker keeps in flight",
    "FTE_WORKER_PARALLEL": "of those, how many compute at once (the rest await the model)",
    "FTE_BUS_MAX_ATTEMPTS": "deliveries before an event is dead-lettered",
    "TWILIO_ACCOUNT_SID": "WhatsApp: the Twilio account (AC...)",
    "TWILIO_AUTH_TOKEN": "WhatsApp: its auth token (or TWILIO_AUTH_TOKEN_FILE)",
    "TWILIO_WHATSAPP_FROM": "WhatsApp: the sender number, +E164",
    "FTE_TWILIO_API_BASE": "WhatsApp: another Twilio API server (a proxy, a test fake)",
    **GMAIL_HELP,
    "FTE_DIGEST_HOUR": "UTC hour of the daily digest of the day before (-1: none)",
    "FTE_DIGEST_EMAIL": "comma-separated operator addresses the digest is emailed to",
    "FTE_ALERT_IDLE_MINUTES": "alert when a channel has had no customer message this long",
    "FTE_ALERT_WINDOW_MINUTES": "the period reply latency and escalation rate are judged over",
    "FTE_MONITOR_INTERVAL": "seconds between refreshes of /metrics' figures and the alerts",
}


def _default(var: str) -> str:
    name = _ENV.get(var)
    value = getattr(Settings(), name) if name else None
    if value is None or value == () or "TOKEN" in var or "SECRET" in var:
        return ""
    return f" [default: {value}]"


ENVIRONMENT_HELP = "\n".join(f"  {var:<30} {text}{_default(var)}" for var, text in _HELP.items())
