"""An in-process cache of sources with their verifiers, so the hot path rarely reads the store.

Entries live ``ttl`` seconds (other processes' changes show up within that time); this process's
own changes invalidate the entry at once. Unknown ids are cached too (as None), so a flood of
requests to one wrong URL costs one read per ``ttl``. Concurrent misses for one id share a
single read.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from interlink.webhooks.inbound.sources import IngestConfig

__all__ = ["SourceCache", "SourceLoader"]

SourceLoader = Callable[[str], Awaitable[IngestConfig | None]]


class SourceCache:
    """TTL cache of :class:`IngestConfig` by source id, bounded to ``max_entries`` (LRU)."""

    def __init__(
        self,
        loader: SourceLoader,
        *,
        ttl: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loader = loader
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, IngestConfig | None]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[IngestConfig | None]] = {}

    async def get(self, source_id: str) -> IngestConfig | None:
        """The source's config, or None when it does not exist. Store errors propagate."""
        entry = self._entries.get(source_id)
        now = self._clock()
        if entry is not None and entry[0] > now:
            return entry[1]
        pending = self._loading.get(source_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[IngestConfig | None] = asyncio.get_running_loop().create_future()
        self._loading[source_id] = future
        try:
            config = await self._loader(source_id)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved here, so an unawaited future does not warn
            raise
        finally:
            self._loading.pop(source_id, None)
        future.set_result(config)
        self._store(source_id, config, now)
        return config

    def _store(self, source_id: str, config: IngestConfig | None, now: float) -> None:
        expires = now + self._ttl
        if config is not None and config.previous_until is not None:
            # Reload when the previous secret's grace period ends.
            remaining = config.previous_until.timestamp() - time.time()
            expires = min(expires, now + max(0.0, remaining))
        self._entries[source_id] = (expires, config)
        self._entries.move_to_end(source_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def invalidate(self, source_id: str) -> None:
        """Forget one source (after this process changed it)."""
        self._entries.pop(source_id, None)

    def clear(self) -> None:
        self._entries.clear()
