"""HeldWrites: a write waits for the next one, or for the end of the event loop's pass."""

from __future__ import annotations

import asyncio
from typing import Any

from interlink.api.server import HeldWrites


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.eof = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        self.writes.append(b"".join(lines))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def write_eof(self) -> None:
        self.eof = True

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8080) if name == "sockname" else default


async def _one_pass() -> None:
    await asyncio.sleep(0)


async def test_a_head_and_the_body_that_follows_it_go_out_in_one_write() -> None:
    raw = RecordingTransport()
    held = HeldWrites(raw, asyncio.get_running_loop())
    held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert raw.writes == []
    held.write(bytearray(b"ok"))
    assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
    await _one_pass()  # the scheduled flush finds nothing held
    assert len(raw.writes) == 1


async def test_a_lone_write_goes_out_at_the_end_of_the_pass() -> None:
    raw = RecordingTransport()
    held = HeldWrites(raw, asyncio.get_running_loop())
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    held.write(head)
    assert held.get_write_buffer_size() == 7 + len(head)
    await _one_pass()
    assert raw.writes == [head]
    # A streamed chunk written later is held again and, alone, sent the same way.
    held.write(b"5\r\nhello\r\n")
    await _one_pass()
    assert raw.writes[1:] == [b"5\r\nhello\r\n"]


async def test_large_writes_are_not_copied_and_keep_their_order() -> None:
    raw = RecordingTransport()
    held = HeldWrites(raw, asyncio.get_running_loop())
    big = b"x" * (1 << 20)
    held.write(big)  # nothing held: straight through
    assert raw.writes == [big]
    held.write(b"head")
    held.write(big)  # joined to what was held, in order, without a copy into one buffer
    assert raw.writes[1] == b"head" + big
    held.write(b"next")
    held.writelines([b"a", b"b"])
    await _one_pass()
    assert raw.writes[2:] == [b"nexta", b"b"]


async def test_close_and_eof_send_what_is_held_first() -> None:
    raw = RecordingTransport()
    held = HeldWrites(raw, asyncio.get_running_loop())
    held.write(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")
    held.close()
    assert raw.writes == [b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n"]
    assert raw.closed and held.is_closing()
    other = RecordingTransport()
    held = HeldWrites(other, asyncio.get_running_loop())
    held.write(b"last")
    held.write_eof()
    assert other.writes == [b"last"] and other.eof


async def test_what_is_held_when_the_peer_went_away_is_dropped() -> None:
    raw = RecordingTransport()
    held = HeldWrites(raw, asyncio.get_running_loop())
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    raw.closed = True  # the connection was lost meanwhile
    await _one_pass()
    assert raw.writes == []


async def test_everything_else_is_the_wrapped_transports() -> None:
    raw = RecordingTransport()
    held = HeldWrites(raw, asyncio.get_running_loop())
    assert held.get_extra_info("sockname") == ("127.0.0.1", 8080)
    assert held.get_extra_info("peername", "none") == "none"
