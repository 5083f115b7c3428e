-- The conversation lifecycle: who owns a ticket, its tags, acknowledgements while a person
-- owns it, who wrote each message, and which sender addresses each message proved.

ALTER TABLE tickets
    ADD COLUMN owner text NOT NULL DEFAULT 'bot' CHECK (owner IN ('bot', 'human')),
    ADD COLUMN assignee text,
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}',
    ADD COLUMN acknowledged_at timestamptz,
    -- SHA-256 of the ticket's access token (fte_core.access); NULL: no token access
    ADD COLUMN access_hash bytea;
-- Escalated tickets handed over before this migration belong to a person.
UPDATE tickets SET owner = 'human' WHERE status = 'escalated';
-- The hand-over queue: human-owned tickets, oldest first.
CREATE INDEX tickets_owner_idx ON tickets (owner, status, updated_at);
CREATE INDEX tickets_tags_idx ON tickets USING gin (tags);

-- A provider proved this address at least once (how: see fte_core.models.Verification).
ALTER TABLE customer_identifiers ADD COLUMN verified_by text;

-- sender_ids: every address the message claimed ("email:a@b.c", "phone:+1..."); proven_ids:
-- the ones its channel proved. History and thread access are decided on them.
ALTER TABLE messages
    ADD COLUMN author text NOT NULL DEFAULT 'customer'
        CHECK (author IN ('customer', 'agent', 'human')),
    ADD COLUMN author_name text,
    ADD COLUMN sender_ids text[] NOT NULL DEFAULT '{}',
    ADD COLUMN proven_ids text[] NOT NULL DEFAULT '{}',
    ADD COLUMN verified_by text,
    ADD COLUMN ticket_access text,
    -- exactly once: a worker holds an inbound message until claimed_until while it decides;
    -- processed_at is set in the transaction that stores the decision's effect
    ADD COLUMN claimed_until timestamptz,
    ADD COLUMN processed_at timestamptz;
-- 'sending': one deliverer holds the reply; the provider's id is stored with 'sent'.
ALTER TABLE messages DROP CONSTRAINT messages_delivery_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_delivery_status_check CHECK (delivery_status IN
    ('received', 'queued', 'sending', 'sent', 'delivered', 'read', 'failed', 'undelivered'));
ALTER TABLE messages ADD COLUMN sending_until timestamptz;
UPDATE messages SET author = 'agent' WHERE direction = 'outbound';
ALTER TABLE messages ADD CHECK ((direction = 'inbound') = (author = 'customer'));
CREATE INDEX messages_proven_idx ON messages USING gin (proven_ids) WHERE direction = 'inbound';
CREATE INDEX messages_senders_idx ON messages USING gin (sender_ids) WHERE direction = 'inbound';

-- One agent reply per inbound message; people may answer a message as often as they like.
DROP INDEX messages_reply_key;
CREATE UNIQUE INDEX messages_reply_key ON messages (in_reply_to)
    WHERE direction = 'outbound' AND author = 'agent';
