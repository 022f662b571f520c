"""Webhooks: inbound (verify, dedupe, store what providers send) and outbound (sign and deliver)."""
