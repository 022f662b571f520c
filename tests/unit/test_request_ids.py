"""Request ids: unique, 24 hex characters, and not repeated by a forked child."""

from __future__ import annotations

import os

from interlink.api.middleware import new_request_id


def test_request_ids_are_unique_hex_and_differ_after_fork() -> None:
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(value) == 24 and int(value, 16) >= 0 for value in ids)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.waitpid(child, 0)
    from_child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert from_child[:16] != new_request_id()[:16]
