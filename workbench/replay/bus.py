"""The bus as the live stream sees it: messages, stream instances, and the adapter protocol.

:mod:`.nats_source` is the NATS JetStream adapter; another bus is a small adapter of
:class:`Source` (see :mod:`.stream`'s docstring for what each call must guarantee).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..sources import SourceError


# --------------------------------------------------------------------------- the bus, abstractly
@dataclass(frozen=True, slots=True)
class Message:
    """One message as an adapter hands it over."""

    seq: int  # the message's position in its stream (JetStream stream sequence, Kafka offset)
    data: bytes  # the body, as published
    subject: str = ""  # where it was published (NATS subject, Kafka topic/key), for the record
    published_ns: int | None = None  # publish time, ns since the epoch (for the lag in seconds)
    handle: Any = None  # the adapter's own (what it needs to acknowledge the message)


@dataclass(frozen=True, slots=True)
class StreamKey:
    """Which stream instance positions refer to."""

    source: str  # bus and stream, e.g. ``nats:PLATFORM_EVENTS``
    epoch: str  # changes when the stream is recreated (its sequences start again)
    partition: str = ""  # a Kafka partition; a JetStream stream has one ("")


class StreamNotFound(SourceError):
    """The bus has no such stream (yet)."""


class Resync(RuntimeError):
    """The adapter cannot vouch for what it has in flight (a reconnection, a delivery lost):
    the consumer must be positioned again from the database's committed position."""


class Source(Protocol):
    """A bus adapter. Calls come in this order: ``connect``, ``start``, then ``fetch`` / ``ack``
    in turns, ``start`` again after a :class:`Resync`, ``close`` at the end."""

    url: str

    async def connect(self) -> StreamKey:
        """Connect; name the stream instance (raise :class:`~workbench.sources.SourceError`
        naming the stream if it does not exist)."""
        ...

    async def start(self, after: int | None, consumer: str) -> int | None:
        """Position ``consumer`` so that the next message is the first one after sequence
        ``after`` (``None``: from the stream's first message). Returns the sequence of the first
        message the stream still holds if messages after ``after`` are gone (retention), else
        ``None``."""
        ...

    async def fetch(self, max_messages: int, max_wait: float) -> list[Message]:
        """The next messages in sequence order, at most ``max_messages``; waits up to
        ``max_wait`` seconds for the first one (an empty list then). Never skips a message;
        raises :class:`Resync` if it could have."""
        ...

    async def ack(self, messages: Sequence[Message]) -> None:
        """Acknowledge ``messages`` (all committed to the database)."""
        ...

    def pending(self) -> int | None:
        """Messages in the stream after the last one fetched (``None``: unknown)."""
        ...

    async def end(self) -> int | None:
        """The sequence of the stream's last message now (``None``: unknown or empty): a
        catch-up stops once it has taken that in, even if more keeps coming."""
        ...

    async def close(self) -> None: ...
