-- The Gmail channel: mailbox_watermarks (0003) holds, per mailbox, the history id the sync
-- has stored everything up to (advanced only after the new messages are stored); this adds
-- when the mailbox's push watch expires (`fte gmail watch` renews it).
ALTER TABLE mailbox_watermarks ADD COLUMN IF NOT EXISTS watch_expires_at timestamptz;
