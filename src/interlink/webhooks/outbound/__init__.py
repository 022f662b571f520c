"""Outbound webhooks: messages fanned out to the endpoints of a tenant's customers.

This package owns everything about sending webhooks out: the Standard Webhooks signatures
(``signing``), per-endpoint payload filters (``filters``), the retry schedule and per-endpoint
backoff (``schedule``) and event-type payload schemas (``schemas``), and, built on them, the
services and workers that store messages and deliver attempts.

The pure building blocks (``signing``, ``filters``, ``schedule``, ``schemas``) import only the
standard library, ``cryptography`` and ``jsonschema``: no database, no HTTP, no other capability.
The services above them talk to the store, the job queue and the HTTP egress through their ports.
"""
