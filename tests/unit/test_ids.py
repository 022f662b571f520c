from __future__ import annotations

import re
import time

from interlink.ids import new_id


def test_ids_are_prefixed_unique_and_sort_by_time() -> None:
    first = new_id("ten")
    time.sleep(0.002)
    later = [new_id("ten") for _ in range(1000)]
    assert re.fullmatch(r"ten_[0-9A-HJKMNP-TV-Z]{26}", first)
    assert len(set(later)) == 1000
    assert all(first < other for other in later)
