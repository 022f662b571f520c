from __future__ import annotations

import os
import re
import threading
import time

from interlink.ids import new_id, random_bytes


def test_ids_are_prefixed_unique_and_sort_by_time() -> None:
    first = new_id("ten")
    time.sleep(0.002)
    later = [new_id("ten") for _ in range(1000)]
    assert re.fullmatch(r"ten_[0-9A-HJKMNP-TV-Z]{26}", first)
    assert len(set(later)) == 1000
    assert all(first < other for other in later)


def test_the_first_ten_digits_are_the_milliseconds_and_the_rest_spread_evenly() -> None:
    before = int(time.time() * 1000)
    made = [new_id("evt") for _ in range(4000)]
    after = int(time.time() * 1000)
    digits = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    for made_id in (made[0], made[-1]):
        millisecond = 0
        for digit in made_id[4:14]:
            millisecond = millisecond * 32 + digits.index(digit)
        assert before <= millisecond <= after
    random_part = "".join(made_id[14:] for made_id in made)  # 64,000 digits, 2,000 of each
    counts = [random_part.count(digit) for digit in digits]
    assert min(counts) > 1700 and max(counts) < 2300


def test_random_bytes_are_never_handed_out_twice_across_threads_or_a_fork() -> None:
    draws: list[bytes] = []
    lock = threading.Lock()

    def draw() -> None:
        mine = [random_bytes(10) for _ in range(2000)]  # several refills of the 4 KiB buffer
        with lock:
            draws.extend(mine)

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(draws) == len(set(draws)) == 8000
    assert len(random_bytes(5000)) == 5000  # more than one draw holds

    random_bytes(10)  # the parent's buffer now holds bytes a careless child would repeat
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(writer, b"".join(random_bytes(10) for _ in range(50)))
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    with os.fdopen(reader, "rb") as pipe:
        from_child = pipe.read()
    from_parent = b"".join(random_bytes(10) for _ in range(50))
    assert len(from_child) == 500
    assert {from_child[i : i + 10] for i in range(0, 500, 10)}.isdisjoint(
        {from_parent[i : i + 10] for i in range(0, 500, 10)}
    )
