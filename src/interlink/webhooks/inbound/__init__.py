"""Inbound webhooks: a signature verifier per provider, and senders that sign demo requests."""
