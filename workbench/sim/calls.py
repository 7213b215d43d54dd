"""A function call scheduled on a SimPy clock, at a fraction of a ``Timeout``'s cost.

The model schedules several calls per order (a trader's answer, the deadlines the scheduler
sweeps, each step of a receipt) and a zero-delay dispatch whenever a trader frees a slot. As
``env.timeout(delay)`` plus a callback each is a ``Timeout`` (an ``Event`` with its value, delay
and environment) and a closure; a :class:`Call` is one small object holding the function and its
arguments, put on the same queue by the same ``Environment.schedule`` (so it is ordered exactly
as the timeout was: same time, same priority, the next sequence number) and processed by the
same ``Environment.step`` (counted as one SimPy event, as before).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import NORMAL, URGENT

__all__ = ["NORMAL", "URGENT", "Call", "Direct", "call_later"]


class Call:
    """What ``Environment.step`` needs of an event: ``callbacks`` and ``_ok``; calls
    ``fn(*args)`` when processed."""

    __slots__ = ("args", "callbacks", "fn")
    #: A call never fails (``step`` reads it after the callbacks): a class attribute, so
    #: building one sets three slots, not four.
    _ok = True

    def __init__(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args
        self.callbacks: list[Callable[[Call], None]] | None = [_run]


class Direct:
    """A scheduled call of ``fn(event)``: ``fn`` reads its order (or currency) and attempt from
    the event itself (``arg``, ``k``), so ``Environment.step`` calls the model's handler with
    no trampoline in between (``_run`` and the packing and unpacking of ``args``: a third of a
    :class:`Call`'s own cost). Queued and counted exactly as a :class:`Call`."""

    __slots__ = ("arg", "callbacks", "k")
    _ok = True

    def __init__(self, fn: Callable[[Direct], None], arg: Any, k: int) -> None:
        self.arg, self.k = arg, k
        self.callbacks: list[Callable[[Direct], None]] | None = [fn]


def _run(call: Call) -> None:
    call.fn(*call.args)


def call_later(env: simpy.Environment, delay: float, fn: Callable[..., None], *args: Any) -> None:
    """Call ``fn(*args)`` at ``env.now + delay`` (``delay >= 0``), as ``env.timeout(delay)``
    with that callback would, at the same place in the queue."""
    env.schedule(Call(fn, args), NORMAL, delay)  # type: ignore[arg-type]
