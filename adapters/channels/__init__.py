"""Channel adapters: each provider's webhook parsing and its sender (ports.ChannelSender)."""
