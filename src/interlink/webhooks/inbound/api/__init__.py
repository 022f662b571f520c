"""The inbound HTTP surface: the ingest route and the management API."""
