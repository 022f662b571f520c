"""Per-endpoint rate limits shared by every worker: a GCRA bucket kept in the endpoint's row.

The bucket is one number, the theoretical arrival time (``rate_limit_tat``, unix seconds),
updated under the row lock, so every process and machine sharing the store draws from the
same bucket. The burst is one second's worth of deliveries. Only rate-limited endpoints pay
for this extra statement.
"""

from __future__ import annotations

import math
import time

from sqlalchemy import select, update

from interlink.store.database import Database
from interlink.webhooks.outbound.tables import outbound_endpoints

__all__ = ["take_slots"]


async def take_slots(
    db: Database, endpoint_id: str, rate: float, wanted: int, *, now: float | None = None
) -> list[float]:
    """Reserve up to ``wanted`` deliveries at ``rate`` per second.

    Returns:
        One entry per wanted delivery: 0.0 for those that may go now, else the seconds until
        its slot, so that refused deliveries can be rescheduled at their own slots.
    """
    interval = 1.0 / rate
    burst = max(1.0, rate)
    now = time.time() if now is None else now
    async with db.transaction() as conn:
        stored = await conn.scalar(
            select(outbound_endpoints.c.rate_limit_tat)
            .where(outbound_endpoints.c.id == endpoint_id)
            .with_for_update()
        )
        tat = max(float(stored or now), now)
        allowed = max(0, min(wanted, math.floor((now + burst * interval - tat) / interval)))
        new_tat = tat + allowed * interval
        await conn.execute(
            update(outbound_endpoints)
            .where(outbound_endpoints.c.id == endpoint_id)
            .values(rate_limit_tat=new_tat)
        )
    # Refused deliveries come back spread over the slots after the free one, not all at once.
    waits = [0.0] * allowed
    base = tat + allowed * interval - (now + burst * interval) + interval
    waits.extend(max(interval, base + n * interval) for n in range(wanted - allowed))
    return waits
