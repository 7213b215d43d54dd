"""Every ``--help`` matches its command: an option a help text names is one that command takes,
and the examples of ``workbench --help`` parse."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator

import pytest

from workbench.cli import build_parser

#: ``--name`` in running text (not a bare ``--``, not the middle of a word or path).
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
#: An option of another program, written as that program's (``JupyterLab's --allow-root``):
#: a mention the command forwards or explains, not one of its own.
FOREIGN = re.compile(r"\b[A-Z][\w.-]*'s (--[a-z][a-z0-9-]*)")


def _commands(
    parser: argparse.ArgumentParser, prefix: str = "workbench"
) -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
    """Every (sub)command: its name, its parser, and its one-line help in the parent's list."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub, summaries.get(name, "")
                yield from _commands(sub, f"{prefix} {name}")


def _texts(parser: argparse.ArgumentParser, summary: str) -> list[str]:
    """What ``--help`` shows in words: the summary, description, epilog and every option's help
    (read before argparse wraps them, which may break a long option at a hyphen)."""
    texts = [summary, parser.description or "", parser.epilog or ""]
    texts += [a.help for a in parser._actions if a.help and a.help != argparse.SUPPRESS]
    return texts


COMMANDS = list(_commands(build_parser()))


def test_every_command_is_checked() -> None:
    names = {name for name, _, _ in COMMANDS}
    assert {"workbench replay", "workbench audit", "workbench sweep", "workbench report"} <= names


@pytest.mark.parametrize(("name", "parser", "summary"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_help_names_only_options_the_command_takes(
    name: str, parser: argparse.ArgumentParser, summary: str
) -> None:
    takes = set(parser._option_string_actions)
    wrong = []
    for text in _texts(parser, summary):
        foreign = {m.start(1) for m in FOREIGN.finditer(text)}
        for m in OPTION.finditer(text):
            if m.group() not in takes and m.start() not in foreign:
                wrong.append(f"{m.group()} in {text!r}")
    assert not wrong, f"`{name} --help` names options it does not take: " + "; ".join(wrong)


@pytest.mark.parametrize(("name", "parser", "summary"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_help_renders(name: str, parser: argparse.ArgumentParser, summary: str) -> None:
    """argparse formats every help text with ``%``: a literal "60 % of capacity" in a help text
    made ``workbench simulate --help`` end in a traceback."""
    text = parser.format_help()
    assert name.split()[-1] in text


def test_the_examples_of_workbench_help_parse(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    lines = [
        line.strip()
        for text in (parser.epilog or "", *(p.epilog or "" for _, p, _ in COMMANDS))
        for line in text.splitlines()
        if line.strip().startswith("workbench ")
    ]
    assert len(lines) >= 10
    for line in lines:
        try:
            args = build_parser().parse_args(shlex.split(line)[1:])
        except SystemExit:
            pytest.fail(f"example does not parse: {line}\n{capsys.readouterr().err}")
        assert args.command == shlex.split(line)[1]
