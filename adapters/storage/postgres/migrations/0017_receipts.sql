-- Web-form requests acknowledged before a worker took them in (SPEC 4 step 1, the fast
-- path): the message as the form sent it, under the ticket number the customer was
-- given. The worker's intake transaction opens that ticket and deletes the row, so a
-- reserved number is always either a receipt here or a ticket, never neither.
CREATE TABLE IF NOT EXISTS receipts (
    ticket_number  text PRIMARY KEY,
    message        jsonb NOT NULL,
    access_hash    bytea,
    received_at    timestamptz NOT NULL
);
