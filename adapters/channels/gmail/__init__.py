"""The Gmail channel: Pub/Sub push verification, mailbox sync by history id, MIME parsing
into InboundMessage, and replies in the same thread (GmailSender)."""
