"""The live stream: a bus's messages applied to the replay database in batches, exactly once.

The same semantics as the Parquet replay (:mod:`.engine`), message by message: each message body
is one envelope (catalog section 1: a JSON object, ``payload`` nested, timestamps as RFC 3339
strings); identical redeliveries of an ``event_id`` are skipped, conflicting copies and
undecodable messages quarantined with their raw bytes, everything else applied, and every
projection brought up to date (:mod:`.incremental`).

**Exactly once.** A batch is one DuckDB transaction: its events, its quarantine rows, the
projections, and the stream position (``stream_positions``: the last message sequence of the
stream that the database has taken in) commit together or not at all. Messages are acknowledged
to the bus only after that commit. So after a crash anywhere, the database is as the last
committed batch left it, and the position it holds says exactly which messages it has: on
restart the consumer is positioned right after it, and a message delivered again (an ack lost,
a batch redelivered by the broker) is recognised by its sequence and acknowledged without
effect. Events are also identified by ``event_id``, so the same event published twice, or
already loaded from an export, is a counted redelivery, never applied twice. The adapter
guarantees that messages come in sequence order without holes (after any disruption it
re-positions the consumer from the database rather than trust what the broker had in flight),
which is what makes one sequence number a sufficient position.

**Adapters.** A bus is a :class:`Source` (the protocol below); :mod:`.nats_source` is the NATS
JetStream one. Another bus (Kafka, say) is a small adapter: ``connect`` names the stream
instance (topic and partition, plus an epoch that changes if the topic is recreated),
``start`` seeks to the position after the one the database committed, ``fetch`` returns
messages in offset order, ``ack`` commits the consumer group's offset *after* the database
commit (informational only: the database's position is the one that counts).

Nothing lost: for every batch, *messages = applied + duplicates + quarantined* is checked
before the commit; a message the database already had (by sequence) is counted apart as
``redelivered``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..domain.catalog import DEFAULT_MAX_PAYLOAD_BYTES
from ..sources import SourceError
from .bodies import BodyError, envelope_row, parse_body
from .bus import Message, Resync, Source, StreamKey, StreamNotFound
from .engine import DEFAULT_MEMORY_LIMIT, ReplayError
from .live import LiveReaders
from .stream_db import StreamDatabase
from .stream_results import BatchResult, StreamSummary, _lag_text, add_counts

__all__ = [
    "BatchResult",
    "BodyError",
    "Message",
    "Options",
    "Resync",
    "Source",
    "StreamDatabase",
    "StreamKey",
    "StreamNotFound",
    "StreamSummary",
    "catch_up",
    "envelope_row",
    "follow",
    "is_stream_url",
    "open_source",
    "parse_body",
    "run",
    "run_sync",
]

T = TypeVar("T")


# --------------------------------------------------------------------------- the consumer loop
@dataclass
class Options:
    """How a stream run batches and when it stops."""

    max_batch: int = 50_000  # messages per transaction at most
    max_wait: float = 1.0  # seconds to wait for the first message of a batch
    linger: float = 0.005  # seconds to wait for more once a batch has begun
    follow: bool = False  # False: stop once caught up
    idle_stop: float = 1.0  # catch-up: stop after this long with nothing new
    max_messages: int | None = None  # stop after this many messages (tests, benchmarks)
    status_every: float = 5.0  # follow: a status line this often (seconds); 0: never
    keep_latencies: bool = False
    reconnect_timeout: float = 60.0  # catch-up: give up after the broker is gone this long
    reader_lag: float = 5.0  # readers see a snapshot at most about this far behind (seconds)
    publish: bool = True  # publish read snapshots for readers (see replay/snapshots.py)


async def run(
    source: Source,
    db: str | Path,
    *,
    consumer: str | None = None,
    options: Options | None = None,
    stop: asyncio.Event | None = None,
    status: Callable[[str], None] | None = None,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
) -> StreamSummary:
    """Consume ``source`` into ``db`` until caught up (or, with ``options.follow``, until
    ``stop`` is set); returns what was done. See the module docstring for the guarantees."""
    opts = options or Options()
    told = False
    while True:
        try:
            key = await source.connect()  # before the database is touched: no file for a bad URL
            break
        except StreamNotFound as exc:
            await source.close()
            if not opts.follow or (stop is not None and stop.is_set()):
                raise
            if status is not None and not told:
                status(f"{exc}; waiting for it")
                told = True
            await asyncio.sleep(1.0)
        except BaseException:
            await source.close()
            raise
    store_db = StreamDatabase(
        db, source.url, memory_limit=memory_limit, max_payload_bytes=max_payload_bytes
    )
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb")
    loop = asyncio.get_running_loop()

    async def in_db(fn: Callable[[], T]) -> T:
        # DuckDB releases the GIL: the event loop keeps receiving while a batch commits.
        return await loop.run_in_executor(pool, fn)

    summary = StreamSummary(db=Path(db), url=source.url, run_id=store_db.run_id)
    started = time.perf_counter()
    last_status = started
    readers = LiveReaders(db, source.url, reader_lag=opts.reader_lag) if opts.publish else None
    failed = True
    try:
        store_db.key = key
        name = store_db.consumer_name(key, consumer)
        store_db.consumer = summary.consumer = name
        if readers is not None:
            await in_db(lambda: readers.start(store_db.con, key.source, name))
        committed = store_db.committed(key)
        gone_from = await _restart(source, committed, name, opts)
        if gone_from is not None:
            summary.skipped_gone += gone_from - (committed or 0) - 1
        target = None if opts.follow else await source.end()
        idle_since = time.perf_counter()
        while True:
            if stop is not None and stop.is_set():
                summary.stopped_by = summary.stopped_by or "signal"
                break
            if opts.max_messages is not None and summary.messages >= opts.max_messages:
                break
            done = store_db.totals.last_seq if store_db.totals.last_seq is not None else committed
            if target is not None and done is not None and done >= target:
                summary.stopped_by = summary.stopped_by or "caught up"
                break
            want = opts.max_batch
            if opts.max_messages is not None:
                want = max(1, min(want, opts.max_messages - summary.messages))
            try:
                quiet = not opts.follow and source.pending() == 0
                msgs = await _fetch(source, want, opts, stop, wait=0.2 if quiet else None)
            except Resync:
                committed = store_db.committed(key)
                gone_from = await _restart(source, committed, name, opts)
                if gone_from is not None:
                    summary.skipped_gone += gone_from - (committed or 0) - 1
                continue
            if not msgs:
                if readers is not None:
                    await in_db(lambda: readers.idle(store_db.con))
                pending = source.pending()
                summary.lag_events = pending
                if pending == 0:
                    summary.lag_seconds = 0.0
                now = time.perf_counter()
                if (
                    status is not None
                    and opts.status_every
                    and now - last_status >= opts.status_every
                ):
                    last_status = now
                    status(_status_line(summary, now - started))
                if not opts.follow and (
                    pending == 0 or time.perf_counter() - idle_since >= opts.idle_stop
                ):
                    summary.stopped_by = summary.stopped_by or "caught up"
                    break
                continue
            idle_since = time.perf_counter()
            result = await in_db(functools.partial(store_db.apply, key, msgs))
            await source.ack(msgs)
            if readers is not None:
                await in_db(
                    functools.partial(
                        _after_commit,
                        readers,
                        store_db,
                        result.committed_at,
                        store_db.totals.last_seq,
                    )
                )
            summary.batches += 1
            summary.full_builds += result.how == "full"
            add_counts(summary, result)
            if result.last_seq is not None:
                summary.last_seq = result.last_seq
                if summary.first_seq is None:
                    summary.first_seq = msgs[0].seq
            last = msgs[-1]
            summary.lag_events = source.pending()
            if last.published_ns is not None:
                # behind: how old the last event applied is, unless nothing is waiting
                summary.lag_seconds = (
                    0.0
                    if summary.lag_events == 0
                    else max(0.0, result.committed_at - last.published_ns / 1e9)
                )
                if opts.keep_latencies:
                    summary.latencies.extend(
                        max(0.0, result.committed_at - m.published_ns / 1e9)
                        for m in msgs
                        if m.published_ns is not None
                    )
            now = time.perf_counter()
            if status is not None and opts.status_every and now - last_status >= opts.status_every:
                last_status = now
                status(_status_line(summary, now - started))
                if readers is not None and readers.over_budget:
                    status(_over_budget(readers))
        failed = False
    finally:
        summary.seconds = time.perf_counter() - started
        try:
            await source.close()
        finally:
            try:
                if readers is not None:  # no checkpoint (finish, close) while a copy runs
                    await in_db(readers.publisher.wait)
                summary.hashes = await in_db(store_db.finish)
                summary.total_events = await in_db(store_db.total_events)
            finally:
                try:
                    if readers is not None:
                        await in_db(
                            lambda: readers.stop(
                                store_db.con, publish=not failed, finished_at=store_db.finished_at
                            )
                        )
                finally:
                    await in_db(store_db.close)
                    if readers is not None:
                        await in_db(readers.closed)
                    pool.shutdown(wait=True)
    return summary


def _over_budget(readers: LiveReaders) -> str:
    cost = readers.publisher.last_cost or 0.0
    return (
        f"stream: publishing a read snapshot takes {cost:.1f} s, more than half the reader lag "
        f"of {readers.publisher.reader_lag:g} s: readers may fall further behind"
    )


def _after_commit(
    readers: LiveReaders, store_db: StreamDatabase, at: float, last_seq: int | None
) -> None:
    """In the database's thread, after a batch's commit: what readers are told."""
    readers.committed(store_db.con, at, last_seq, store_db.events_now())


async def _restart(
    source: Source, committed: int | None, consumer: str, opts: Options
) -> int | None:
    """``source.start``, tried again while the broker cannot be reached (a restart of the broker,
    a network blip), for ``opts.reconnect_timeout`` seconds (``--follow``: for ever)."""
    deadline = time.monotonic() + opts.reconnect_timeout
    wait = 0.1
    while True:
        try:
            return await source.start(committed, consumer)
        except (SourceError, ReplayError):
            raise
        except Exception as exc:
            if not opts.follow and time.monotonic() >= deadline:
                raise SourceError(
                    f"{source.url}: cannot position the consumer ({exc or type(exc).__name__})"
                ) from exc
            await asyncio.sleep(wait)
            wait = min(wait * 2, 2.0)


async def _fetch(
    source: Source,
    want: int,
    opts: Options,
    stop: asyncio.Event | None,
    wait: float | None = None,
) -> list[Message]:
    """The next batch; returns early (empty) when ``stop`` is set."""
    wait = opts.max_wait if wait is None else wait
    if stop is None:
        return await source.fetch(want, wait)
    fetch = asyncio.ensure_future(source.fetch(want, wait))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({fetch, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if fetch.done():
        return fetch.result()
    fetch.cancel()
    with contextlib.suppress(asyncio.CancelledError, Resync):
        await fetch
    # Whatever the adapter had already taken is unacknowledged and uncommitted: the next run's
    # consumer is positioned from the database, so it comes again then.
    return []


def _status_line(s: StreamSummary, elapsed: float) -> str:
    rate = s.messages / elapsed if elapsed else 0.0
    return (
        f"stream: {s.messages:,} messages ({rate:,.0f}/s), applied {s.applied:,}, "
        f"quarantined {s.quarantined:,}, sequence {s.last_seq if s.last_seq is not None else '-'}; "
        f"lag {_lag_text(s.lag_events, s.lag_seconds)}"
    )


def run_sync(coro_factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end from synchronous code, also inside a notebook (whose event
    loop is already running in this thread: the coroutine then runs in a thread of its own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as ex:
        return ex.submit(lambda: asyncio.run(coro_factory())).result()  # type: ignore[arg-type]


# --------------------------------------------------------------------------- entry points
def open_source(url: str, **kwargs: Any) -> Source:
    """The adapter for a bus URL: ``nats://HOST:PORT`` (NATS JetStream). Only adapters tested
    against a real broker are shipped; another bus adds its scheme here."""
    if url.startswith(("nats://", "tls://")):
        from .nats_source import NatsSource

        return NatsSource(url, **kwargs)
    raise ValueError(f"{url!r}: not a stream URL (the live stream is read from nats://HOST:PORT)")


def is_stream_url(text: str) -> bool:
    return "://" in str(text) and str(text).split("://", 1)[0] in ("nats", "tls")


def catch_up(
    db: str | Path,
    url: str,
    *,
    stream: str = "PLATFORM_EVENTS",
    consumer: str | None = None,
    max_batch: int = 50_000,
    max_messages: int | None = None,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
) -> StreamSummary:
    """Apply everything published on the stream since this database last read it, up to the
    stream's last message when called (what comes later waits for the next call), then return
    (a notebook's refresh): ``workbench.replay.catch_up("out/sample.duckdb", "nats://127.0.0.1:4222")``.
    Works inside a running event loop (Jupyter) too. It writes the database and, where a
    follower published read snapshots of it, publishes a new one when it ends; a reader
    connection that attached the file itself (no snapshot) must be closed first (DuckDB will not
    mix a reader and a writer of one file in a process)."""
    opts = Options(max_batch=max_batch, max_messages=max_messages, status_every=0)
    return run_sync(
        lambda: run(
            open_source(url, stream=stream),
            db,
            consumer=consumer,
            options=opts,
            memory_limit=memory_limit,
            max_payload_bytes=max_payload_bytes,
        )
    )


def follow(
    db: str | Path,
    url: str,
    *,
    stream: str = "PLATFORM_EVENTS",
    consumer: str | None = None,
    max_batch: int = 50_000,
    stop: asyncio.Event | None = None,
    status: Callable[[str], None] | None = None,
    status_every: float = 5.0,
    signals: bool = True,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    reader_lag: float = 5.0,
) -> StreamSummary:
    """Follow the stream until SIGINT or SIGTERM (with ``signals``) or until ``stop`` is set;
    stops between batches, so the database always ends on a committed batch. Meanwhile readers
    (``workbench.connect(db, read_only=True)``, ``audit``, notebooks) see a read snapshot at most
    about ``reader_lag`` seconds behind the last commit (see :mod:`.snapshots`)."""

    async def main() -> StreamSummary:
        halt = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        installed = []
        if signals:
            import signal

            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, halt.set)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
        try:
            return await run(
                open_source(url, stream=stream, reconnect_forever=True),
                db,
                consumer=consumer,
                options=Options(
                    max_batch=max_batch,
                    follow=True,
                    status_every=status_every,
                    reader_lag=reader_lag,
                ),
                stop=halt,
                status=status,
                memory_limit=memory_limit,
                max_payload_bytes=max_payload_bytes,
            )
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    return asyncio.run(main())
