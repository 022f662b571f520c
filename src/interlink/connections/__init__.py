"""Connections: the credentials that bind a tenant to one account at a provider.

This capability owns the provider catalog (``connections.catalog``: what each provider is, how it
authenticates, where its API lives, how it paginates and rate-limits), OAuth flows and the
encrypted storage of connection secrets. It may import the store and egress ports, never the
internals of other capabilities.
"""
