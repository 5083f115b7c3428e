-- Outbound delivery part by part (fte_core.delivery): each part of a reply the provider
-- accepted, recorded before the next part is sent and before the reply is marked sent, so
-- a retry never sends it again; provider status reports (Twilio callbacks) update it.
CREATE TABLE delivery_parts (
    message_id           uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    part                 integer NOT NULL CHECK (part >= 0),
    channel              text NOT NULL CHECK (channel IN ('email', 'whatsapp', 'web_form')),
    provider_message_id  text NOT NULL CHECK (provider_message_id <> ''),
    status               text NOT NULL DEFAULT 'sent' CHECK (status IN
                         ('queued', 'sending', 'sent', 'delivered', 'read', 'failed',
                          'undelivered')),
    error                text,
    accepted_at          timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, part)
);
-- Status reports find the part by the provider's id.
CREATE UNIQUE INDEX delivery_parts_provider_key ON delivery_parts (channel, provider_message_id);

-- Why the reply's last send failed, or why it was given up (undelivered).
ALTER TABLE messages ADD COLUMN delivery_error text;
