"""Every benchmark command the docs, the README and the scripts' own docstrings show is one its
script's parser takes (they are not run: the other tests here run every script)."""

from __future__ import annotations

import argparse
import re
import runpy
import shlex
import sys

import pytest

from helpers import ROOT

SCRIPTS = [  # not the modules they import
    path
    for path in sorted((ROOT / "benchmarks").glob("*.py"))
    if 'if __name__ == "__main__":' in path.read_text()
]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"^(?:\.venv/bin/)?python benchmarks/\w+\.py(?:\s|$)")


def commands(text: str, *, markdown: bool) -> list[str]:
    """The `python benchmarks/<script>.py ...` commands in the text: in Markdown, code spans
    (a span may wrap to the next line) and lines of fenced blocks; elsewhere, whole lines that
    show no optional part in brackets. Comments dropped."""
    found = []
    if markdown:
        for block in re.findall(r"```\w*\n(.*?)```", text, flags=re.S):
            found += block.splitlines()
        found += re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    else:
        found += [line for line in text.splitlines() if "[" not in line]
    found = [" ".join(line.split(" #")[0].split()) for line in found]
    return [line for line in found if COMMAND.match(line)]


DOCUMENTED = [
    pytest.param(command, id=f"{source.relative_to(ROOT)}: {command}")
    for source in [*PAGES, *SCRIPTS]
    for command in commands(source.read_text(), markdown=source.suffix == ".md")
]


def test_every_script_shows_its_command():
    shown = {shlex.split(p.values[0])[1] for p in DOCUMENTED}
    assert {f"benchmarks/{s.name}" for s in SCRIPTS} <= shown


class Parsed(Exception):
    """Raised once the script's parser has taken the command line: nothing else runs."""


@pytest.mark.parametrize("command", DOCUMENTED)
def test_every_documented_command_parses(command, monkeypatch):
    script, *argv = shlex.split(command)[1:]
    parse = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        parse(self, args, namespace)  # exits (fails the test) on what it does not take
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", [script, *argv])
    with pytest.raises(Parsed):
        runpy.run_path(str(ROOT / script), run_name="__main__")
