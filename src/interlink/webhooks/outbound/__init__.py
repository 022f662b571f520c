"""Outbound webhooks: messages fanned out to the endpoints of a tenant's customers.

This package owns everything about sending webhooks out: the Standard Webhooks signatures
(``signing``), per-endpoint payload filters (``filters``), the retry schedule and per-endpoint
backoff (``schedule``) and event-type payload schemas (``schemas``), and, built on them, the
services and workers that store messages and deliver attempts:

* ``tables`` and ``migrations/`` (Alembic branch ``outbound``); ``state`` (config, the shared
  egress client, the message writer and the outcome recorder of a runtime);
* services: ``endpoints`` (+ ``endpoint_checks``, ``endpoint_secrets``, ``auth``),
  ``event_types``, ``messages`` (+ ``message_queries``, ``ordering``), ``attempts`` (log,
  resend, recover), ``ratelimit``, ``retention``;
* the delivery path: ``writer`` (group commit of accepted messages), ``delivery`` (the batch
  handler), ``sender`` (one signed attempt), ``recording``/``recorder``/``finishing``
  (outcomes, health, ordering successors, events in one transaction), ``fanout`` (internal
  events to endpoints);
* ``api/`` (routes; ``fast_accept`` serves the message-accept hot path ahead of FastAPI),
  ``cli`` (``interlink webhooks``) and ``capability`` (what plugs into the core).

The pure building blocks (``signing``, ``filters``, ``schedule``, ``schemas``) import only the
standard library, ``cryptography`` and ``jsonschema``: no database, no HTTP, no other capability.
The services above them talk to the store, the job queue, the outbox and the HTTP egress
through the core's ports, and import no other capability.
"""
