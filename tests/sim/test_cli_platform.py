"""The platform options of ``workbench simulate`` / ``workbench sweep`` (cancellations,
withdrawals, disputes, outages) parse into the configuration they say, in the units they say."""

from __future__ import annotations

import dataclasses

import pytest

from workbench.cli import build_parser, main
from workbench.cli.sim import _platform_params, _sim_config
from workbench.sim.config import Disputes, SimConfig, Withdrawals
from workbench.sim.stress import STRESSES, apply_stress, outage_windows
from workbench.sim.sweep import configure, platform_knobs

BASE = ["--days", "0.5", "--warmup-hours", "1", "--traders", "6", "--orders-per-day", "300"]


def _config(*argv: str, command: str = "simulate") -> SimConfig:
    args = build_parser().parse_args([command, *BASE, *argv])
    cfg = _sim_config(args)
    assert isinstance(cfg, SimConfig)
    return cfg


def test_no_platform_option_leaves_the_parts_off() -> None:
    cfg = _config()
    assert cfg.cancel_rate == 0 and cfg.withdrawals is None and cfg.disputes is None
    assert cfg == configure(None, days=0.5, warmup=3600.0, traders=6, orders_per_day=300)


@pytest.mark.parametrize("command", ["simulate", "sweep"])
def test_each_option_sets_its_part_in_the_models_units(command: str) -> None:
    cfg = _config(
        "--cancel-rate", "2", "--client-withdrawals", "1.5", "--trader-withdrawals", "0.25",
        "--disputes", "3.5", "--reversed", "30", command=command,
    )  # fmt: skip
    assert cfg.cancel_rate == pytest.approx(2 / 3600)  # per hour -> per second
    assert cfg.withdrawals == dataclasses.replace(
        Withdrawals(), client_per_day=1.5, trader_per_day=0.25
    )
    assert cfg.disputes == dataclasses.replace(Disputes(), share=0.035, reversed=0.30)


def test_patience_is_the_mean_wait_before_a_client_gives_up() -> None:
    assert _config("--patience", "30").cancel_rate == pytest.approx(1 / 1800)
    assert _config("--patience", "30").cancel_rate == _config("--cancel-rate", "2").cancel_rate


def test_zero_switches_a_calibrated_part_off_and_others_keep_the_fit() -> None:
    """On a base that has every part (as a calibrated one does), an option replaces only what
    it names; rates of zero switch the part off."""
    fitted = dataclasses.replace(
        configure(None, days=0.5, traders=6),
        cancel_rate=1e-4,
        withdrawals=Withdrawals(client_per_day=1.0, trader_per_day=0.3, fee=7, fail=0.2),
        disputes=Disputes(share=0.04, reversed=0.34),
    )
    cfg = platform_knobs(fitted, trader_withdrawals=0.0, reversed_share=0.5)
    assert cfg.cancel_rate == 1e-4
    assert cfg.withdrawals == dataclasses.replace(fitted.withdrawals, trader_per_day=0.0)  # type: ignore[arg-type]
    assert cfg.disputes == Disputes(share=0.04, reversed=0.5)
    off = platform_knobs(
        fitted, cancel_per_hour=0, client_withdrawals=0, trader_withdrawals=0, dispute_share=0
    )
    assert off.cancel_rate == 0 and off.withdrawals is None and off.disputes is None
    with pytest.raises(ValueError, match="not negative"):
        platform_knobs(fitted, cancel_per_hour=-1)


def test_outages_alone_and_over_a_preset() -> None:
    """``--outages`` cuts each trader's outage windows out of its shifts, drawn as the stress
    module draws them; over ``--stress flaky`` it replaces the preset's rate only."""
    plain = _config()
    cfg = _config("--outages", "4", "--outage-minutes", "20")
    windows = outage_windows(plain, 4.0, 20 * 60.0, 0)
    for before, after in zip(plain.traders, cfg.traders, strict=True):
        for lo, hi in windows[before.trader_id]:
            mid = (lo + hi) / 2
            assert not any(on <= mid < off for on, off in after.shifts)
    assert cfg.arrivals == plain.arrivals  # no utilisation target without a preset
    flaky = _config("--stress", "flaky", "--outages", "1")
    expected = apply_stress(plain, dataclasses.replace(STRESSES["flaky"], outages_per_day=1.0))
    assert flaky == expected != _config("--stress", "flaky")


def test_bad_values_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--disputes", "120"],
        ["--cancel-rate", "-1"],
        ["--patience", "0"],
        ["--cancel-rate", "2", "--patience", "30"],
    ):
        with pytest.raises(SystemExit) as e:
            build_parser().parse_args(["simulate", *argv])
        assert e.value.code == 2, argv
    capsys.readouterr()
    # an option and a --param for the same knob: bad input, one line
    argv = ["sweep", *BASE, "--disputes", "2", "--param", "dispute_share=0.01,0.02"]
    assert main([*argv, "--no-progress"]) == 2
    assert "both as an option and as a --param" in capsys.readouterr().err


def test_the_options_map_to_sweep_parameters() -> None:
    args = build_parser().parse_args(
        ["sweep", "--patience", "15", "--disputes", "1", "--outages", "2"]
    )
    assert _platform_params(args) == {
        "cancel_per_hour": 4.0,
        "dispute_share": 0.01,
        "outages_per_day": 2.0,
    }
