-- Channel settings, metrics, the PostgreSQL event queue (outbox), dead letters,
-- idempotent-consumer bookkeeping and Gmail watermarks.

CREATE TABLE channel_configs (
    channel             text PRIMARY KEY CHECK (channel IN ('email', 'whatsapp', 'web_form')),
    tone                text NOT NULL,
    max_words           integer CHECK (max_words > 0),
    preferred_chars     integer CHECK (preferred_chars > 0),
    max_chars_per_part  integer CHECK (max_chars_per_part > 0),
    settings            jsonb NOT NULL DEFAULT '{}',
    updated_at          timestamptz NOT NULL DEFAULT now()
);
INSERT INTO channel_configs (channel, tone, max_words, preferred_chars, max_chars_per_part)
VALUES ('email', 'formal', 500, NULL, NULL),
       ('whatsapp', 'conversational', NULL, 300, 1600),
       ('web_form', 'semi-formal', 300, NULL, NULL)
ON CONFLICT (channel) DO NOTHING;

CREATE TABLE agent_metrics (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    channel        text CHECK (channel IN ('email', 'whatsapp', 'web_form')),
    metric         text NOT NULL,
    value          double precision NOT NULL,
    ticket_number  text,
    message_id     uuid,
    labels         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX agent_metrics_metric_time_idx ON agent_metrics (metric, recorded_at);
CREATE INDEX agent_metrics_channel_time_idx ON agent_metrics (channel, recorded_at);

-- Durable queue used as the event bus when no Kafka is configured, and as the
-- transactional outbox in front of Kafka. Workers claim rows with
-- FOR UPDATE SKIP LOCKED where available_at <= now() and locked_until is past.
CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic         text NOT NULL,
    key           text NOT NULL,
    payload       bytea NOT NULL,
    attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error    text,
    available_at  timestamptz NOT NULL DEFAULT now(),
    locked_until  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_ready_idx ON outbox (topic, available_at, id);
CREATE INDEX outbox_key_idx ON outbox (topic, key, id);

CREATE TABLE dead_letters (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id    bigint,
    topic        text NOT NULL,
    key          text NOT NULL,
    payload      bytea NOT NULL,
    attempts     integer NOT NULL,
    error        text NOT NULL,
    failed_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_topic_idx ON dead_letters (topic, failed_at);

CREATE TABLE processed_messages (
    consumer      text NOT NULL,
    message_id    text NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

CREATE TABLE mailbox_watermarks (
    mailbox     text PRIMARY KEY,
    history_id  bigint NOT NULL CHECK (history_id >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
