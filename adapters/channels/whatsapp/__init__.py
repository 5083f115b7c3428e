"""WhatsApp through Twilio: webhook signature check, form parsing, and the sender."""
