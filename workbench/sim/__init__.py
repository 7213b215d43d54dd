"""Simulation of the platform around its scheduler, and the experiments on it.

The model is :class:`Simulation` over a :class:`SimConfig` (by hand, :func:`synthetic_config`,
:func:`mmc_config`, or calibrated from a replayed database by :mod:`.calibrate`) and a policy
of :data:`POLICIES`. Experiments: :func:`simulate` (one policy's replications), :func:`compare`
(policies on common random numbers, paired intervals vs a baseline), :func:`.sweep.sweep` (a
grid of parameters on Dask); :func:`.metrics.metrics`, :func:`orders_frame` and
:func:`traders_frame` read one finished run.

Names load on first use, so importing a submodule stays cheap. The functions ``metrics`` and
``sweep`` share their modules' names and are not re-exported here (a package attribute would
shadow the module): ``from workbench.sim.sweep import sweep``,
``from workbench.sim.metrics import metrics``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Exported name → the submodule defining it.
_EXPORTS: dict[str, str] = {
    "SimConfig": "config",
    "Simulation": "model",
    "POLICIES": "policies",
    "Policy": "policies",
    "make_policy": "policies",
    "mmc_config": "presets",
    "synthetic_config": "presets",
    "Streams": "streams",
    "METRICS": "metrics",
    "orders_frame": "metrics",
    "traders_frame": "metrics",
    "Comparison": "study",
    "compare": "study",
    "simulate": "study",
    "summarize": "study",
    "configure": "sweep",
    "sweep_summary": "sweep",
}

__all__ = [
    "METRICS",
    "POLICIES",
    "Comparison",
    "Policy",
    "SimConfig",
    "Simulation",
    "Streams",
    "compare",
    "configure",
    "make_policy",
    "mmc_config",
    "orders_frame",
    "simulate",
    "summarize",
    "sweep_summary",
    "synthetic_config",
    "traders_frame",
]

if TYPE_CHECKING:
    from .config import SimConfig
    from .metrics import METRICS, orders_frame, traders_frame
    from .model import Simulation
    from .policies import POLICIES, Policy, make_policy
    from .presets import mmc_config, synthetic_config
    from .streams import Streams
    from .study import Comparison, compare, simulate, summarize
    from .sweep import configure, sweep_summary


def __getattr__(name: str) -> Any:
    """An exported name, else a submodule (``workbench.sim.calibrate``), loaded on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        from .. import _lazy

        return _lazy.submodule(__name__, name)
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    from .. import _lazy

    return sorted({*globals(), *__all__, *_lazy.names(__path__)})
