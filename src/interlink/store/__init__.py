"""The store: one SQLAlchemy metadata, the engine for SQLite or PostgreSQL, and migrations.

Owns connection handling and the core tables. Capabilities define their own tables on
``metadata`` in their own folders and ship their own migration branch.
"""

from interlink.store.database import Database, StoreUnavailable, translate_url
from interlink.store.schema import metadata

__all__ = ["Database", "StoreUnavailable", "metadata", "translate_url"]
