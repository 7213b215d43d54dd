"""Closed-form queueing results the assignment simulator is validated against.

The simulator routes orders (customers) to traders (servers). Before its output is trusted for
anything the theory cannot answer (priorities, heterogeneous traders, rating-driven routing),
it must reproduce what the theory *can* answer: with Poisson arrivals, exponential handling
times, identical traders and first-come-first-served assignment it is an M/M/c queue, and with
orders that time out while waiting it is the M/M/c+M (Erlang A) queue. Every function here is
pure and deterministic, so a test can compare a long simulation run against it directly.

Notation throughout: ``lam`` is the arrival rate λ, ``mu`` the service rate μ of one server,
``c`` the number of servers, ``a = λ/μ`` the offered load in Erlangs and ``theta`` the
abandonment rate θ (mean patience 1/θ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Relative tail mass the truncated Erlang A chain is allowed to drop.
TAIL_TOLERANCE: float = 1e-15
#: Largest chain ``erlang_a`` will build before giving up (memory guard: 8 bytes per state).
MAX_STATES: int = 20_000_000
_CHUNK: int = 4096


def _check_servers(c: int) -> None:
    if isinstance(c, bool) or not isinstance(c, int | np.integer):
        raise TypeError(f"c must be an integer number of servers, got {c!r}")
    if c < 1:
        raise ValueError(f"c must be at least 1, got {c}")


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")


def erlang_b(c: int, a: float) -> float:
    """Erlang B: probability that an arrival to an M/M/c/c loss system finds all servers busy.

    Why it matters: it is the θ→∞ limit of the Erlang A model (an order that cannot be assigned
    at once is lost), so it bounds the abandonment fraction the simulator may report, and it is
    the building block of Erlang C below.

    Source: Erlang's loss formula B(c, a) = (a^c / c!) / Σ_{k=0..c} a^k / k!, evaluated with the
    standard recursion B(0) = 1, B(k) = a·B(k−1) / (k + a·B(k−1)) (as given e.g. in Gross,
    Shortle, Thompson & Harris, *Fundamentals of Queueing Theory*). The recursion only ever
    forms ratios of quantities in [0, 1], so it neither overflows (a^c / c!) nor cancels.
    ``c = 0`` is accepted and gives 1.
    """
    if isinstance(c, bool) or not isinstance(c, int | np.integer):
        raise TypeError(f"c must be an integer number of servers, got {c!r}")
    if c < 0:
        raise ValueError(f"c must be non-negative, got {c}")
    if not (math.isfinite(a) and a >= 0):
        raise ValueError(f"offered load a must be finite and non-negative, got {a!r}")
    b = 1.0
    for k in range(1, int(c) + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Erlang C: probability that an arrival to an M/M/c queue has to wait, P(W > 0).

    Why it matters: it is the fraction of orders that cannot be assigned to a trader on arrival,
    the first number a FCFS simulation run is compared with, and the factor in front of every
    M/M/c waiting-time result (``mmc``, ``mmc_wait_survival``).

    Source: Erlang's delay formula, computed from Erlang B through the identity
    C(c, a) = c·B(c, a) / (c − a·(1 − B(c, a))) (Gross, Shortle, Thompson & Harris; also
    Kleinrock, *Queueing Systems* vol. 1). It needs a stable queue, a < c.
    """
    _check_servers(c)
    if not (math.isfinite(a) and a >= 0):
        raise ValueError(f"offered load a must be finite and non-negative, got {a!r}")
    if a >= c:
        raise ValueError(
            f"Erlang C needs a stable queue, offered load a < c; got a={a} with c={c} "
            f"(utilisation {a / c:.4g}). Use erlang_a for overloaded systems with abandonment."
        )
    b = erlang_b(c, a)
    return c * b / (c - a * (1.0 - b))


@dataclass(frozen=True, slots=True)
class MMc:
    """Steady-state measures of an M/M/c queue (times in the units of 1/λ and 1/μ)."""

    lam: float
    mu: float
    c: int
    #: Server utilisation a/c.
    rho: float
    #: Probability an arrival waits (Erlang C).
    p_wait: float
    #: Mean wait in queue over all arrivals (those served at once count as zero).
    wq: float
    #: Mean number waiting.
    lq: float
    #: Mean time in system, wq + 1/μ.
    w: float
    #: Mean number in system.
    l: float  # noqa: E741 - the textbook name


def mmc(lam: float, mu: float, c: int) -> MMc:
    """Mean waits and queue lengths of a stable M/M/c queue.

    Why it matters: the mean wait for a trader and the mean number of orders waiting are the
    headline outputs of the simulator; on the M/M/c special case they must match these.

    Source: Wq = C(c, a) / (cμ − λ) (the wait, given it is positive, is exponential with rate
    cμ − λ), then Little's law Lq = λ·Wq, W = Wq + 1/μ, L = λ·W (Gross, Shortle, Thompson &
    Harris, section on M/M/c).
    """
    _check_positive("lam", lam)
    _check_positive("mu", mu)
    _check_servers(c)
    a = lam / mu
    p_wait = erlang_c(c, a)
    wq = p_wait / (c * mu - lam)
    w = wq + 1.0 / mu
    return MMc(
        lam=lam,
        mu=mu,
        c=int(c),
        rho=a / c,
        p_wait=p_wait,
        wq=wq,
        lq=lam * wq,
        w=w,
        l=lam * w,
    )


def mmc_wait_survival(lam: float, mu: float, c: int, t: float) -> float:
    """P(Wq > t) in a stable M/M/c queue: C(c, a)·exp(−(cμ − λ)·t) for t ≥ 0.

    Why it matters: service-level targets ("assigned within 30 s") are tail probabilities, and
    the simulator's empirical waiting-time distribution is checked against this curve.

    Source: under FCFS an arrival that waits sees the c servers complete at total rate cμ while
    the queue ahead of it drains, which makes the conditional wait exponential with rate cμ − λ
    (Gross, Shortle, Thompson & Harris; Kleinrock vol. 1).
    """
    if not (math.isfinite(t) and t >= 0):
        raise ValueError(f"t must be finite and non-negative, got {t!r}")
    m = mmc(lam, mu, c)
    return m.p_wait * math.exp(-(c * mu - lam) * t)


def mmc_wait_quantile(lam: float, mu: float, c: int, q: float) -> float:
    """The q-quantile of the wait in queue Wq of a stable M/M/c queue (0 ≤ q ≤ 1).

    Why it matters: percentile waits (p50, p95, p99) are what operations report; this is the
    exact value a simulated percentile should converge to.

    Source: inverting P(Wq ≤ t) = 1 − C·exp(−(cμ − λ)t) (see ``mmc_wait_survival``). The
    distribution has an atom of size 1 − C at zero, so every q ≤ 1 − C has quantile 0; for
    q > 1 − C the quantile is ln(C / (1 − q)) / (cμ − λ), and q = 1 gives infinity.
    """
    if not (math.isfinite(q) and 0.0 <= q <= 1.0):
        raise ValueError(f"q must be a probability in [0, 1], got {q!r}")
    m = mmc(lam, mu, c)
    if q <= 1.0 - m.p_wait:
        return 0.0
    if q == 1.0:
        return math.inf
    return math.log(m.p_wait / (1.0 - q)) / (c * mu - lam)


@dataclass(frozen=True, slots=True)
class ErlangA:
    """Steady-state measures of the M/M/c+M (Erlang A) queue, computed from the exact chain."""

    lam: float
    mu: float
    theta: float
    c: int
    #: Probability an arrival finds all c servers busy and has to wait (by PASTA, P(N ≥ c)).
    p_wait: float
    #: Fraction of arrivals that abandon before being served, θ·E[Lq] / λ.
    p_abandon: float
    #: Mean number waiting, E[(N − c)⁺].
    lq: float
    #: Mean time in queue over all arrivals (served at once: 0; abandoning: their patience).
    #: Little's law on the queue, E[Lq] / λ; for θ > 0 this equals p_abandon / θ.
    wq: float
    #: Mean time in queue of the arrivals that are eventually served.
    wq_served: float
    #: Mean time in queue of the arrivals that abandon (nan when θ = 0: nobody abandons).
    wq_abandoned: float
    #: Mean fraction of servers busy, E[min(N, c)] / c = λ(1 − p_abandon) / (cμ).
    occupancy: float
    #: Largest state kept; the dropped tail has relative mass below ``TAIL_TOLERANCE``.
    truncation: int


def _death_rates(
    n: npt.NDArray[np.int64], mu: float, theta: float, c: int
) -> npt.NDArray[np.float64]:
    return np.minimum(n, c) * mu + np.maximum(n - c, 0) * theta


def erlang_a_distribution(lam: float, mu: float, theta: float, c: int) -> npt.NDArray[np.float64]:
    """Stationary distribution p[n], n = 0..N, of the number in an M/M/c+M system.

    The chain is birth–death with birth rate λ and death rate min(n, c)·μ + max(n − c, 0)·θ, so
    p[n] ∝ Π_{k=1..n} λ / death(k) (detailed balance). The terms are built in log space, which
    keeps loads of thousands of Erlangs from overflowing. N is the first state past c at which
    the ratio r = λ / death(N + 1) is below 1 and p[N]·r / (1 − r) — a bound on everything
    beyond N, because death rates never decrease — is below ``TAIL_TOLERANCE`` times the mass
    already kept. With θ > 0 this terminates for any load, including a ≥ c; with θ = 0 it is
    the M/M/c queue and needs a < c.
    """
    _check_positive("lam", lam)
    _check_positive("mu", mu)
    _check_servers(c)
    if not (math.isfinite(theta) and theta >= 0):
        raise ValueError(f"theta must be finite and non-negative, got {theta!r}")
    c = int(c)
    if theta == 0 and lam >= c * mu:
        raise ValueError(
            f"with theta = 0 nobody abandons and the queue is unstable unless lam < c*mu; "
            f"got lam={lam}, mu={mu}, c={c}"
        )
    log_lam = math.log(lam)
    log_tol = math.log(TAIL_TOLERANCE)
    chunks: list[npt.NDArray[np.float64]] = [np.zeros(1)]
    last = 0.0  # log of the unnormalised term of the last state kept so far
    log_mass = 0.0  # log of the sum of the unnormalised terms kept so far
    start = 1
    while True:
        n = np.arange(start, start + _CHUNK, dtype=np.int64)
        log_terms = last + np.cumsum(log_lam - np.log(_death_rates(n, mu, theta, c)))
        log_masses = np.logaddexp.accumulate(np.concatenate(([log_mass], log_terms)))[1:]
        ratio = lam / _death_rates(n + 1, mu, theta, c)
        # r / (1 - r) bounds the tail only where r < 1; elsewhere the value is masked below.
        below_one = np.where(ratio < 1.0, ratio, 0.5)
        log_tail = log_terms + np.log(ratio) - np.log1p(-below_one)
        done = (n >= c) & (ratio < 1.0) & (log_tail < log_tol + log_masses)
        if done.any():
            stop = int(np.argmax(done))
            chunks.append(log_terms[: stop + 1])
            log_mass = float(log_masses[stop])
            break
        chunks.append(log_terms)
        last = float(log_terms[-1])
        log_mass = float(log_masses[-1])
        start += _CHUNK
        if start > MAX_STATES:
            raise ValueError(
                f"Erlang A chain needs more than {MAX_STATES} states for lam={lam}, mu={mu}, "
                f"theta={theta}, c={c}; the patience 1/theta is too long for this overload"
            )
    log_p = np.concatenate(chunks) - log_mass
    p: npt.NDArray[np.float64] = np.exp(log_p)
    normalised: npt.NDArray[np.float64] = p / p.sum()
    return normalised


def erlang_a(lam: float, mu: float, theta: float, c: int) -> ErlangA:
    """Erlang A (M/M/c+M): M/M/c where a waiting order abandons at rate θ (exponential patience).

    Why it matters: orders on the platform expire if no trader takes them, and then the queue
    is stable at any load; the abandonment fraction and waits are what the simulator must
    reproduce once timeouts are switched on (with exponential timeouts). As θ → 0 it reduces
    to Erlang C (for a < c), and as θ → ∞ to Erlang B's loss system.

    Source: the model is Palm's (1943) and is analysed in Garnett, Mandelbaum & Reiman,
    "Designing a call center with impatient customers" (2002). Instead of their closed forms in
    incomplete gamma functions this evaluates the exact birth–death chain
    (``erlang_a_distribution``), which is simple and accurate to the truncation tolerance.
    p_abandon = θ·E[Lq] / λ is the rate balance of the abandoning flow (Little's law on it).

    The waits of served and abandoning customers come from following one tagged arrival: if it
    finds j others waiting, the position with i customers ahead is left at rate
    r_i = cμ + (i+1)θ (a service completion, one of the i ahead abandoning, or the tagged one
    giving up). It reaches position i with probability r_i / r_j and service with probability
    cμ / r_j (the products telescope), and because the holding time in a position is
    independent of which event ends it, its mean wait given service is Σ_{i=0..j} 1 / r_i.
    """
    p = erlang_a_distribution(lam, mu, theta, c)
    c = int(c)
    n = np.arange(p.size)
    p_wait = min(1.0, float(p[c:].sum()))
    lq = float(((n[c:] - c) * p[c:]).sum())
    p_abandon = theta * lq / lam
    wq = lq / lam
    # Tagged arrival finding j = n - c waiting (PASTA: it sees the stationary distribution).
    j = np.arange(p.size - c)
    rates = c * mu + (j + 1) * theta
    reach_service = c * mu / rates
    mean_wait_if_served = np.cumsum(1.0 / rates)
    served_fraction = float(p[:c].sum() + (p[c:] * reach_service).sum())
    wq_served = float((p[c:] * reach_service * mean_wait_if_served).sum()) / served_fraction
    # Abandoning from position i (reached with probability r_i / r_j, left by abandonment with
    # probability θ / r_i) after waiting Σ_{k=i..j} 1 / r_k sums to θ / r_j · Σ_{k≤j} (k+1) / r_k:
    # no subtraction, so it stays accurate when abandonment is rare.
    abandon_wait = theta / rates * np.cumsum((j + 1) / rates)
    abandon_mass = float((p[c:] * abandon_wait).sum())
    wq_abandoned = abandon_mass / p_abandon if p_abandon > 0 else math.nan
    busy = float((np.minimum(n, c) * p).sum())
    return ErlangA(
        lam=lam,
        mu=mu,
        theta=theta,
        c=c,
        p_wait=p_wait,
        p_abandon=p_abandon,
        lq=lq,
        wq=wq,
        wq_served=wq_served,
        wq_abandoned=wq_abandoned,
        occupancy=busy / c,
        truncation=p.size - 1,
    )
