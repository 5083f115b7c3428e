-- The operators' inbox: notes on tickets, and indexes that keep the monitoring queries
-- (service.monitor, every ~20 s) cheap whatever the size of the messages table.
CREATE TABLE IF NOT EXISTS ticket_notes (
    id             bigserial PRIMARY KEY,
    ticket_number  text NOT NULL REFERENCES tickets (number) ON DELETE CASCADE,
    author         text NOT NULL CHECK (author <> ''),
    text           text NOT NULL CHECK (text <> ''),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ticket_notes_ticket_idx ON ticket_notes (ticket_number, id);

-- A channel's last customer message (fte_channel_idle_seconds).
CREATE INDEX IF NOT EXISTS messages_channel_inbound_idx
    ON messages (channel, created_at) WHERE direction = 'inbound';
-- The agent's replies of the alert window (latency p95, escalation rate).
CREATE INDEX IF NOT EXISTS messages_agent_replies_idx
    ON messages (created_at) WHERE author = 'agent';
-- Decisions on which the two rule evaluators disagreed (fte_policy_disagreements_total).
CREATE INDEX IF NOT EXISTS messages_disagreement_idx ON messages (seq)
    WHERE (record -> 'input_decision' ->> 'error') LIKE 'durable_rules fired%'
       OR (record -> 'output_decision' ->> 'error') LIKE 'durable_rules fired%';
