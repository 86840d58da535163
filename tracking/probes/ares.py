"""c-ares (pycares) driven by the running asyncio event loop, for address look-ups.

c-ares does in C what dnspython does in Python: resolution had been a third of a refresh's
CPU. pycares 5 runs each channel on a thread of its own by default, and every answer then
waits for the GIL and a thread switch; here the channel's sockets are watched by the event
loop instead (``sock_state_cb``, as aiodns did before pycares 5), so an answer is handled on
the thread that awaits it.

c-ares caches answers for their TTL in each channel, and pycares cannot turn that off. A
forced update right after a DNS fix must not see the old address, so a channel lives for one
look-up, or for one :func:`shared_channels` block (one batch of refreshes), never longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import pycares

_NO_SOCKET = pycares.ARES_SOCKET_BAD


class QueryFailed(Exception):
    """c-ares answered a query with an error status (``pycares.errno``)."""

    def __init__(self, errno: int) -> None:
        text = pycares.errno.strerror(errno)
        super().__init__(text if isinstance(text, str) else text.decode("ascii", "replace"))
        self.errno = errno


class LoopChannel:
    """One c-ares channel whose sockets and timers the current event loop runs."""

    def __init__(self, servers: tuple[str, ...], timeout_s: float) -> None:
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._watched: set[int] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        # Two tries of half the time each: a lost datagram is asked again.
        self._channel = pycares.Channel(
            servers=servers,
            timeout=max(timeout_s / 2, 0.1),
            tries=2,
            sock_state_cb=self._socket_state,
        )

    def query(self, name: str, query_type: int) -> asyncio.Future[Any]:
        """The ``pycares.DNSResult`` of one query; fails with :class:`QueryFailed`.

        A name c-ares cannot encode raises ``pycares.AresError`` or ``UnicodeError`` here.
        """
        answer: asyncio.Future[Any] = self.loop.create_future()

        def settle(result: Any, errno: int | None) -> None:
            if answer.done():  # timed out or cancelled meanwhile
                return
            if errno:
                answer.set_exception(QueryFailed(errno))
            else:
                answer.set_result(result)

        def called_back(result: Any, errno: int | None) -> None:
            if threading.get_ident() == self._loop_thread:
                settle(result, errno)
                return
            # Only when the channel is destroyed (pycares cancels on a thread of its own).
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                self.loop.call_soon_threadsafe(settle, result, errno)

        self._channel.query(name, query_type, callback=called_back)
        return answer

    def close(self) -> None:
        """Stop watching the sockets, then let pycares destroy the channel (queries still
        in flight fail with ``ARES_ECANCELLED``)."""
        if self._closed:
            return
        self._closed = True
        for fd in self._watched:
            self.loop.remove_reader(fd)
            self.loop.remove_writer(fd)
        self._watched.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._channel.close()

    def _socket_state(self, fd: int, readable: bool, writable: bool) -> None:
        if self._closed:  # the channel is being destroyed, maybe on another thread
            return
        if readable:
            self.loop.add_reader(fd, self._channel.process_read_fd, fd)
        else:
            self.loop.remove_reader(fd)
        if writable:
            self.loop.add_writer(fd, self._channel.process_write_fd, fd)
        else:
            self.loop.remove_writer(fd)
        if readable or writable:
            self._watched.add(fd)
        else:
            self._watched.discard(fd)
        if self._watched and self._timer is None:
            self._schedule_timeouts()

    def _schedule_timeouts(self) -> None:
        # c-ares says when it next needs to act (a timeout, a retry); at most a second away.
        delay = max(self._channel.timeout(1.0), 0.001)  # type: ignore[no-untyped-call]
        self._timer = self.loop.call_later(delay, self._handle_timeouts)

    def _handle_timeouts(self) -> None:
        self._timer = None
        if self._closed:
            return
        self._channel.process_fd(_NO_SOCKET, _NO_SOCKET)
        # A retry may have opened a socket meanwhile, whose _socket_state set a timer already.
        if self._watched and not self._closed and self._timer is None:
            self._schedule_timeouts()


_SHARED: ContextVar[dict[tuple[str, ...], LoopChannel] | None] = ContextVar(
    "dstrack_shared_dns_channels", default=None
)


@contextlib.contextmanager
def shared_channels() -> Iterator[None]:
    """Within the block (and the tasks started in it), look-ups on the same nameservers share
    one channel: its sockets stay open from one look-up to the next.

    Answers are cached for their TTL while the block lasts, so use it around one batch of
    refreshes (``tracking.refresh.pipeline.update_many``), where a name is looked up at most a few
    times; every look-up outside a block gets a fresh answer.
    """
    channels: dict[tuple[str, ...], LoopChannel] = {}
    token = _SHARED.set(channels)
    try:
        yield
    finally:
        _SHARED.reset(token)
        for channel in channels.values():
            channel.close()


@contextlib.contextmanager
def channel_for(servers: tuple[str, ...], timeout_s: float) -> Iterator[LoopChannel]:
    """The current :func:`shared_channels` block's channel for ``servers``, else one of its
    own, closed afterwards."""
    shared = _SHARED.get()
    if shared is not None:
        channel = shared.get(servers)
        if channel is None:
            channel = shared[servers] = LoopChannel(servers, timeout_s)
        if channel.loop is asyncio.get_running_loop():
            yield channel
            return
    own = LoopChannel(servers, timeout_s)
    try:
        yield own
    finally:
        own.close()
