"""Inbound webhooks: the gateway providers post to (``POST /in/{source_id}``).

It owns sources (a provider account's ingest URL and its verifier), the received-events log,
routing to the tenant's internal HTTP destinations, replay, and the ``interlink sources`` CLI.
The way of a webhook: ``ingest`` (guards, verification on the raw bytes) → ``writer`` (group
commit of the event row and its processing job) → 2xx → ``processing`` (worker: CloudEvent,
routing, sync triggers) → ``forwarding`` (signed delivery to destinations, retried).

It imports the core (store, queue, outbox, vault, api, ``exact_json``), the egress layer, the
pure building blocks of ``webhooks.outbound`` (``filters``, ``signing``) and its own
``verifiers``.
"""
