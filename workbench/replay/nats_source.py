"""The NATS JetStream adapter of the live stream (:mod:`.stream`), and publishing onto it.

Consuming: a durable pull consumer on ``PLATFORM_EVENTS`` with ``AckPolicy.ALL``. The consumer
is positioned from the database (:meth:`NatsSource.start`): it is kept when its state agrees
with the database's committed sequence (everything it delivered was acknowledged, and that is
exactly what the database has), and otherwise deleted and created again to deliver from the
message after the committed one. While running, every delivery's consumer sequence must follow
the previous one: a hole (a delivery lost with a dropped connection), a reconnection or a
deleted consumer raises :class:`~.bus.Resync`, and the consumer is positioned from the
database again. So messages reach the database in stream order with no holes, and one
acknowledgement per batch (of its last message) acknowledges exactly what was committed.

Pull requests are sent by hand (``$JS.API.CONSUMER.MSG.NEXT``) and the messages of this
consumer's inbox are taken straight from the client's protocol parser (:class:`_Client`), not
through ``PullSubscription.fetch``: nats-py builds a message object, parses its headers and
awaits a queue per message, which holds a consumer to about 15,000 messages/s; a batch of raw
messages is what a batch commit needs (docs/performance.md has the figures).

Publishing: :func:`publish` puts an export onto the stream (creating the stream if needed), in
the catalog's format (:mod:`.publish`), with ``Nats-Msg-Id`` for the broker's deduplication.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import nats
from nats.aio.client import Client
from nats.js import api
from nats.js.errors import NotFoundError

from ..sources import SourceError
from . import publish as export
from .stream import Message, Resync, StreamKey, StreamNotFound

STREAM = "PLATFORM_EVENTS"
SUBJECTS = ["platform.>"]
#: How long the broker remembers a message id to drop a redelivery of it (seconds).
DUPLICATE_WINDOW = 120.0


def check_url(url: str) -> str:
    """``nats://HOST:PORT`` (port 4222 if left out), or a ValueError naming what is wrong."""
    parsed = urlparse(url)
    if parsed.scheme not in ("nats", "tls") or not parsed.hostname:
        raise ValueError(f"{url!r} is not a NATS URL such as nats://127.0.0.1:4222")
    return url


async def _reachable(url: str, timeout: float) -> None:
    """Fail at once, naming the URL, if nothing listens there (nats-py would retry for as long
    as it is allowed to reconnect later)."""
    parsed = urlparse(url)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parsed.hostname, parsed.port or 4222), timeout
        )
        writer.close()
    except (OSError, TimeoutError) as exc:
        raise SourceError(f"{url}: cannot connect to NATS ({exc or type(exc).__name__})") from None


class _Client(Client):
    """nats-py's client, with the messages of chosen subscriptions handed over raw.

    ``sinks`` maps a subscription id to a function of ``(subject, reply, data, headers)``, called
    from the protocol parser for each message of that subscription (no message object, no
    header parsing, no queue). Every other subscription is served as usual."""

    def __init__(self) -> None:
        super().__init__()
        self.sinks: dict[int, Callable[[bytes, bytes, bytes, bytes | None], None]] = {}

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None
    ) -> None:
        sink = self.sinks.get(sid)
        if sink is None:
            await super()._process_msg(sid, subject, reply, data, headers)  # type: ignore[arg-type]
            return
        sink(subject, reply, data, headers)


def _ack_fields(reply: bytes) -> tuple[int, int, int, int, int]:
    """``(delivered count, stream seq, consumer seq, timestamp ns, pending)`` of a JetStream
    delivery, from its reply subject: ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.
    <ts>.<pending>`` or the newer form with domain and account hash after ``ACK``."""
    tokens = reply.split(b".")
    if len(tokens) == 9:
        t = tokens[4:9]
    elif len(tokens) >= 11:
        t = tokens[6:11]
    else:
        raise ValueError(f"not a JetStream delivery: {reply!r}")
    return int(t[0]), int(t[1]), int(t[2]), int(t[3]), int(t[4])


def _status(headers: bytes | None) -> tuple[str, dict[str, str]]:
    """The status code of a status message (``NATS/1.0 408 Request Timeout``) and its headers."""
    if not headers:
        return "", {}
    lines = headers.split(b"\r\n")
    first = lines[0].decode("ascii", "replace").split(None, 2)
    code = first[1] if len(first) > 1 else ""
    out: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            out[name.strip().decode("ascii", "replace")] = value.strip().decode("utf-8", "replace")
    return code, out


@dataclass
class _Pull:
    """One pull request still being served."""

    remaining: int
    expires_at: float


class NatsSource:
    """The live stream's NATS JetStream adapter (the :class:`~.bus.Source` protocol)."""

    def __init__(
        self,
        url: str,
        *,
        stream: str = STREAM,
        ack_wait: float = 120.0,
        pull_expires: float = 5.0,
        reconnect_forever: bool = False,
        connect_timeout: float = 5.0,
        fill_wait: float = 1.0,
    ) -> None:
        self.url = check_url(url)
        self.fill_wait = fill_wait  # at most this long to fill a batch while far behind
        self.stream = stream
        self.ack_wait = ack_wait
        self.pull_expires = pull_expires
        self.reconnect_forever = reconnect_forever
        self.connect_timeout = connect_timeout
        self.nc: _Client | None = None
        self.consumer = ""
        self._sid: int | None = None
        self._inbox = ""
        self._buffer: list[Message] = []
        self._arrived = asyncio.Event()
        self._pulls: list[_Pull] = []
        self._next_cseq: int | None = None
        self._pending: int | None = None
        self._broken: str | None = None
        self._epoch = ""

    # -- connection
    async def connect(self) -> StreamKey:
        await _reachable(self.url, self.connect_timeout)
        nc = _Client()

        async def on_error(exc: Exception) -> None:
            self._break(f"connection error: {exc}")

        async def on_disconnect() -> None:
            self._break("disconnected from the broker")

        async def on_reconnect() -> None:
            self._break("reconnected to the broker")

        try:
            await nc.connect(
                servers=[self.url],
                connect_timeout=self.connect_timeout,  # type: ignore[arg-type]
                max_reconnect_attempts=-1 if self.reconnect_forever else 120,
                reconnect_time_wait=0.25,  # type: ignore[arg-type]
                allow_reconnect=True,
                error_cb=on_error,
                disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
                pending_size=256 * 1024 * 1024,
            )
        except Exception as exc:  # nats-py raises several kinds; all mean "not reachable"
            raise SourceError(
                f"{self.url}: cannot connect to NATS ({exc or type(exc).__name__})"
            ) from None
        self.nc = nc
        try:
            info = await nc.jetstream().stream_info(self.stream)
        except NotFoundError:
            raise StreamNotFound(
                f"{self.url}: no JetStream stream {self.stream} (the platform creates it; "
                "`workbench publish` creates it for a demo)"
            ) from None
        self._epoch = str(info.created or "")
        return StreamKey(f"nats:{self.stream}", self._epoch, "")

    def _break(self, why: str) -> None:
        if self._broken is None:
            self._broken = why
        self._arrived.set()

    # -- positioning
    async def start(self, after: int | None, consumer: str) -> int | None:
        assert self.nc is not None
        nc = self.nc
        js = nc.jetstream()
        if self._sid is not None:
            nc.sinks.pop(self._sid, None)
            with contextlib.suppress(Exception):
                sub = nc._subs.get(self._sid)
                if sub is not None:
                    await sub.unsubscribe()
        self._buffer.clear()
        self._pulls.clear()
        self._broken = None
        self.consumer = consumer
        want = after or 0
        info = await js.stream_info(self.stream)
        if str(info.created or "") != self._epoch:
            raise SourceError(
                f"{self.url}: stream {self.stream} was recreated while reading it; run again "
                "(events already stored are recognised by event_id)"
            )
        first = int(info.state.first_seq or 0)
        gone = first if first > want + 1 and info.state.messages else None
        ci = None
        with contextlib.suppress(NotFoundError):
            ci = await js.consumer_info(self.stream, consumer)
        if ci is not None and not self._agrees(ci, want):
            await js.delete_consumer(self.stream, consumer)
            ci = None
        if ci is None:
            config = api.ConsumerConfig(
                durable_name=consumer,
                description="workbench replay (positioned from the database's stream_positions)",
                ack_policy=api.AckPolicy.ALL,
                ack_wait=self.ack_wait,
                max_ack_pending=-1,
                filter_subject=None,
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE
                if want
                else api.DeliverPolicy.ALL,
                opt_start_seq=want + 1 if want else None,
                max_waiting=16,
                # a consumer left behind (a database deleted, say) goes away by itself; a
                # database that comes back later gets a new one, positioned from it
                inactive_threshold=7 * 24 * 3600.0,
            )
            ci = await js.add_consumer(self.stream, config)
        delivered = ci.delivered.consumer_seq if ci.delivered is not None else 0
        self._next_cseq = int(delivered or 0) + 1
        self._pending = int(ci.num_pending or 0)
        self._inbox = nc.new_inbox()
        sub = await nc.subscribe(self._inbox)
        self._sid = sub._id
        nc.sinks[sub._id] = self._receive
        return gone

    @staticmethod
    def _agrees(ci: api.ConsumerInfo, committed: int) -> bool:
        """The consumer delivered exactly what the database has, and nothing is in flight."""
        cfg = ci.config
        return (
            cfg.ack_policy == api.AckPolicy.ALL
            and not cfg.filter_subject
            and ci.delivered is not None
            and ci.ack_floor is not None
            and int(ci.delivered.stream_seq or 0) == committed
            and int(ci.ack_floor.stream_seq or 0) == committed
            and not ci.num_ack_pending
        )

    # -- receiving
    def _receive(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        if not data and headers:
            code, hdr = _status(headers)
            if code == "100":  # idle heartbeat
                return
            if self._pulls:
                self._pulls.pop(0)
            if (
                code == "409"
                and "deleted" in hdr.get("Description", headers.decode("utf-8", "replace")).lower()
            ):
                self._break("the consumer was deleted")
            self._arrived.set()
            return
        try:
            _, sseq, cseq, ts, pending = _ack_fields(reply)
        except ValueError:
            self._break(f"unexpected message on the consumer's inbox: {reply!r}")
            return
        if self._next_cseq is not None and cseq != self._next_cseq:
            self._break(f"delivery {self._next_cseq} was lost (got {cseq})")
            return
        self._next_cseq = cseq + 1
        self._pending = pending
        if self._pulls:
            self._pulls[0].remaining -= 1
            if self._pulls[0].remaining <= 0:
                self._pulls.pop(0)
        self._buffer.append(Message(sseq, data, subject.decode("utf-8", "replace"), ts, reply))
        self._arrived.set()

    async def _request(self, batch: int) -> None:
        assert self.nc is not None
        now = time.monotonic()
        self._pulls = [p for p in self._pulls if p.expires_at > now]
        outstanding = sum(p.remaining for p in self._pulls)
        if outstanding >= batch or len(self._pulls) >= 2:
            return
        n = batch * 2 - outstanding
        body = json.dumps({"batch": n, "expires": int(self.pull_expires * 1e9)}).encode()
        self._pulls.append(_Pull(n, now + self.pull_expires + 0.5))
        await self.nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.consumer}", body, reply=self._inbox
        )

    async def fetch(self, max_messages: int, max_wait: float) -> list[Message]:
        deadline = time.monotonic() + max_wait
        while True:
            if self._broken is not None:
                why, self._broken = self._broken, None
                raise Resync(why)
            if self._buffer:
                break
            await self._request(max_messages)
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(left, 0.5))
        # a batch has begun: keep the next pull in flight, take a moment for more to arrive
        await self._request(max_messages)
        if len(self._buffer) < max_messages:
            await asyncio.sleep(0.002)
        # Far behind (the broker holds enough messages not yet delivered to fill the batch):
        # fill it. A transaction's cost grows much more slowly than its size, so a catch-up in
        # full batches goes several times faster; a follower keeping up (a backlog smaller than
        # a batch) never waits here.
        fill_until = time.monotonic() + self.fill_wait
        while (
            len(self._buffer) < max_messages
            and len(self._buffer) + (self._pending or 0) >= max_messages
            and self._broken is None
            and time.monotonic() < fill_until
        ):
            await self._request(max_messages)
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), 0.05)
        if self._broken is not None:
            why, self._broken = self._broken, None
            raise Resync(why)
        out, self._buffer = self._buffer[:max_messages], self._buffer[max_messages:]
        return out

    async def ack(self, messages: Sequence[Message]) -> None:
        if not messages or self.nc is None:
            return
        # AckPolicy.ALL: the last one acknowledges every delivery before it.
        with contextlib.suppress(Exception):  # a lost ack only means a redelivery, recognised
            await self.nc.publish(messages[-1].handle.decode(), b"+ACK")

    def pending(self) -> int | None:
        return self._pending + len(self._buffer) if self._pending is not None else None

    async def end(self) -> int | None:
        assert self.nc is not None
        info = await self.nc.jetstream().stream_info(self.stream)
        return int(info.state.last_seq) if info.state.messages else None

    async def close(self) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.flush(timeout=2)
            with contextlib.suppress(Exception):
                await self.nc.close()
            self.nc = None


# --------------------------------------------------------------------------- publishing
@dataclass
class PublishSummary:
    url: str
    stream: str
    read: int = 0
    stored: int = 0  # messages the stream took
    dropped: int = 0  # identical redeliveries the broker dropped by Nats-Msg-Id
    conflicting: int = 0  # copies of an event_id with other content (published, own message id)
    malformed: int = 0  # rows without a usable event_id (published)
    first_seq: int | None = None
    last_seq: int | None = None
    seconds: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.read == self.stored + self.dropped

    def __str__(self) -> str:
        rate = self.read / self.seconds if self.seconds else 0.0
        seqs = (
            f" (sequences {self.first_seq}..{self.last_seq})" if self.first_seq is not None else ""
        )
        return "\n".join(
            [
                f"published {self.read:,} rows to {self.url} stream {self.stream} in "
                f"{self.seconds:.1f} s ({rate:,.0f}/s)",
                f"  stored {self.stored:,}{seqs}, dropped by the broker as redeliveries "
                f"(Nats-Msg-Id) {self.dropped:,} — "
                + ("nothing lost" if self.balanced else "NOT BALANCED"),
                f"  of which conflicting copies {self.conflicting:,} (own message id), rows "
                f"without an event_id {self.malformed:,}",
            ]
        )


async def ensure_stream(js: Any, stream: str = STREAM) -> None:
    """Create the stream (file storage, subjects ``platform.>``) unless it exists; check that an
    existing one takes the platform's subjects."""
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(
            api.StreamConfig(
                name=stream,
                subjects=SUBJECTS,
                storage=api.StorageType.FILE,
                duplicate_window=DUPLICATE_WINDOW,
                description="P2P platform events (catalog section 1)",
            )
        )
        return
    subjects = info.config.subjects or []
    if "platform.>" not in subjects:
        raise SourceError(
            f"stream {stream} exists but does not take platform.> (it takes {subjects})"
        )


async def publish_async(
    sources: Sequence[str | Path],
    url: str,
    *,
    stream: str = STREAM,
    rate: float | None = None,
    window: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> PublishSummary:
    """Publish every row of the exports onto ``stream`` (see :mod:`.publish` for the format and
    the order); ``rate`` caps the messages per second (a steady publisher, for lag figures)."""
    check_url(url)
    await _reachable(url, 5.0)
    out = PublishSummary(url=url, stream=stream)
    started = time.perf_counter()
    try:
        nc = await nats.connect(servers=[url], connect_timeout=5, max_reconnect_attempts=3)
    except Exception as exc:
        raise SourceError(f"{url}: cannot connect to NATS ({exc or type(exc).__name__})") from None
    try:
        js = nc.jetstream(timeout=30)
        await ensure_stream(js, stream)
        inflight: list[asyncio.Future[api.PubAck]] = []

        def settle(acks: list[api.PubAck]) -> None:
            for ack in acks:
                if ack.duplicate:
                    out.dropped += 1
                else:
                    out.stored += 1
                    out.first_seq = (
                        ack.seq if out.first_seq is None else min(out.first_seq, ack.seq)
                    )
                    out.last_seq = ack.seq if out.last_seq is None else max(out.last_seq, ack.seq)

        for m in export.messages(sources):
            out.read += 1
            out.by_kind[m.kind] = out.by_kind.get(m.kind, 0) + 1
            out.conflicting += m.kind == "conflicting"
            out.malformed += m.kind == "malformed"
            inflight.append(
                await js.publish_async(
                    m.subject, m.body, stream=stream, headers={"Nats-Msg-Id": m.msg_id}
                )
            )
            if len(inflight) >= window:
                settle(list(await asyncio.gather(*inflight)))
                inflight = []
            if rate:
                ahead = out.read / rate - (time.perf_counter() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if progress is not None and out.read % 10_000 == 0:
                progress(out.read)
        settle(list(await asyncio.gather(*inflight)))
    finally:
        await nc.close()
    out.seconds = time.perf_counter() - started
    return out


def publish(
    sources: Sequence[str | Path], url: str, *, stream: str = STREAM, rate: float | None = None
) -> PublishSummary:
    """Synchronous :func:`publish_async` (for the CLI, tests and notebooks)."""
    from .stream import run_sync

    return run_sync(lambda: publish_async(sources, url, stream=stream, rate=rate))
