-- The event queue and the Kafka outbox over the outbox table of 0003.
-- claimed_by: the consumer holding a row until locked_until (acks from a consumer whose
--   visibility timeout ran out are ignored); sent_at: the relay published the row to Kafka.
ALTER TABLE outbox ADD COLUMN claimed_by uuid;
ALTER TABLE outbox ADD COLUMN sent_at timestamptz;

-- Rows still to hand out or relay, oldest first; sent rows drop out of both indexes.
DROP INDEX outbox_ready_idx;
DROP INDEX outbox_key_idx;
CREATE INDEX outbox_pending_idx ON outbox (topic, id) WHERE sent_at IS NULL;
CREATE INDEX outbox_key_idx ON outbox (topic, key, id) WHERE sent_at IS NULL;
CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL;

CREATE INDEX dead_letters_outbox_idx ON dead_letters (outbox_id);

-- Consumers LISTEN on fte_outbox to wake at once instead of polling.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fte_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
