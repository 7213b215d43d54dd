"""Argument types of the command line: each turns text into a value or a one-line usage error."""

from __future__ import annotations

import argparse
import math
from datetime import UTC, datetime


def date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-01") from None


def instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time like 2026-11-03T12:00:00Z or 2026-11-03"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def window_days(text: str) -> int:
    """A window in whole days, zero or more (the statement matching's)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} days: a window cannot be negative")
    return value


def hours(text: str) -> float:
    """A duration in hours, zero or more, fractions allowed (REVIEW_OVERDUE's threshold)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} hours: a threshold is a finite number >= 0")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value} must lie strictly between 0 and 1")
    return value


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{value} must not be negative")
    return value


def per_cent(text: str) -> float:
    """A share in per cent, 0 to 100."""
    value = non_negative(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"{value} per cent: a share is at most 100")
    return value


def positive_minutes(text: str) -> float:
    """A duration in minutes, positive and finite."""
    value = non_negative(text)
    if value == 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: minutes must be positive and finite")
    return value


def positive_seconds(text: str) -> float:
    value = non_negative(text)
    if value == 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: seconds must be positive and finite")
    return value


def days(text: str) -> float:
    value = non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("days must be positive")
    return value


def param(text: str) -> tuple[str, list[object]]:
    """NAME=V1,V2,...: each value an int, a float, true/false, or else a string."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE[,VALUE...]")
    out: list[object] = []
    for v in values.split(","):
        v = v.strip()
        for cast in (int, float):
            try:
                out.append(cast(v))
                break
            except ValueError:
                continue
        else:
            out.append({"true": True, "false": False}.get(v.lower(), v))
    return name.strip(), out


def max_payload(text: str) -> int | None:
    if text.lower() == "none":
        return None
    value = int(text)
    if value <= 0:
        raise ValueError(f"--max-payload-bytes must be positive, not {value}")
    return value


def names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names, none empty."""
    out = tuple(n.strip() for n in text.split(","))
    if not all(out):
        raise argparse.ArgumentTypeError(f"expected NAME[,NAME...], got {text!r}")
    return out
