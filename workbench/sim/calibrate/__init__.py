"""Calibrate the simulator from a replayed database, and say how well it fits.

``calibrate(db)`` reads a replay database (read-only) and fits what a :class:`~.config.SimConfig`
needs:

* **Trader behaviour** (:class:`~.config.Behaviour`), per trader when the trader has at least
  :data:`MIN_N` observations of the quantity, pooled over all traders otherwise. A *decision* is
  an attempt whose response is known: declined, expired (the trader let the accept window pass:
  an ignore) or accepted; attempts cancelled or superseded before any response are censored and
  left out. ``decline`` and ``ignore`` are shares of decisions; ``accept_delay`` is assigned →
  accepted, ``decline_delay`` assigned → declined, ``complete`` accepted → completed for a payin
  and accepted → the attempt's first receipt upload for a payout; ``low_confidence`` is the share
  of analysed receipts with confidence below 0.8. The analyser and the reviewers are the
  platform's, not the trader's, so ``analyse_delay`` (upload → analysed) and ``review``
  (review start, or the analysis if later, → approval by a reviewer) are always pooled.
* **Delays and amounts** are fitted by a lognormal from the log-moments; the fit is kept when the
  Kolmogorov–Smirnov test does not reject it (p ≥ :data:`KS_P`) or its statistic is negligible
  anyway (D ≤ :data:`KS_D`, for samples so large that any misfit is significant); otherwise the
  distribution is the empirical one (up to :data:`QUANTILES` quantiles, sampled by inverse CDF).
  An accepted delay is only ever seen below the accept window, so when a lognormal puts mass
  beyond it the ignore share is corrected for the accepts the simulator would turn into expiries.
* **Traders** as registered now (currency, limits, cap, reward), the deposit level top-ups bring
  the available deposit to (the median of the available amount right after each top-up), and
  their online time: intervals where the trader was online and not blocked, from the presence
  and blocking events. A trace uses the real intervals; a synthetic run tiles a daily pattern (the
  quarter-hours the trader was most often online, as many as its average online time fills).
* **Clients**: fee as now, and the highest level a top-up brought the ledger balance to.
* **Demand**: orders per day, the hourly profile (orders per clock hour, UTC, per day: the 24
  weights sum to the orders per day), currency mix, payin share, amounts per currency, rates
  (from the assignments: hourly step series for a trace, the median for a synthetic run), the
  platform's deadlines and rating cadence as observed.

``Calibration.report`` is a Polars frame with one row per fitted quantity: who (a trader id or
``"pooled"``), what, ``n``, the parameters, the Kolmogorov–Smirnov statistic of the distribution
used against the data (and of the lognormal, to show why it was or was not used), for shares a
test against the pooled share (per trader) or of homogeneity over traders (pooled), and observed
vs fitted mean, p50 and p95. ``Calibration.summary()`` says the essentials in a few lines.

``Calibration.config()`` builds a synthetic configuration from the fitted profile;
``Calibration.trace_config()`` replays the real orders of the last days (real ids, times, amounts,
clients) with the real shifts and rates: the "last week's orders under another policy" study.
``backtest(db)`` runs that trace under the production policy and sets simulated against real.
"""

from __future__ import annotations

# The parts, each in its own module (see their docstrings); every name callers, notebooks and
# tests import from ``workbench.sim.calibrate`` is re-exported here.
from .calibration import BIN, NEVER_ONLINE, Calibration, calibrate
from .fit import KS_D, KS_P, MIN_N, QUANTILES, REPORT_COLUMNS, REPORT_SCHEMA, Row, fit_dist
from .platform import platform_fit
from .read import DAY
from .traders import LOW_CONFIDENCE
from .validation import SETTLE, backtest

__all__ = [
    "BIN",
    "DAY",
    "KS_D",
    "KS_P",
    "LOW_CONFIDENCE",
    "MIN_N",
    "NEVER_ONLINE",
    "QUANTILES",
    "REPORT_COLUMNS",
    "REPORT_SCHEMA",
    "SETTLE",
    "Calibration",
    "Row",
    "backtest",
    "calibrate",
    "fit_dist",
    "platform_fit",
]
