-- The Gmail channel: per mailbox, the history id its sync has stored everything up to
-- (advanced only after the new messages are stored), and when its push watch expires.
CREATE TABLE IF NOT EXISTS mailbox_state (
    mailbox           text PRIMARY KEY,
    history_id        bigint NOT NULL CHECK (history_id > 0),
    watch_expires_at  timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
