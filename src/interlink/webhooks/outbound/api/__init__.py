"""HTTP routes of the outbound-webhooks capability."""
