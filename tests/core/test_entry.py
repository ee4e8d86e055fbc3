"""entry.py's options_first: every option of Hydra's own argument parser is put before the
overrides, with its value, so that Hydra's parser accepts options anywhere on the line."""

from __future__ import annotations

import pytest
from hydra._internal.utils import get_args_parser

from virnucpro_trainer.entry import hydra_options, options_first

PARSER = get_args_parser()
OPTIONS = [a for a in PARSER._actions if a.option_strings]


def parse(*args: str):
    """What Hydra's parser makes of `python train.py ARGS` after options_first."""
    return PARSER.parse_args(options_first(["train.py", *args])[1:])


def test_every_option_of_hydras_parser_is_known():
    known = hydra_options()
    assert set(known) == {name for a in OPTIONS for name in a.option_strings}
    # the four a hand-kept list had missed (hydra-core 1.3.8), and the usual ones
    for name in ("--run", "-r", "--info", "-i", "--shell-completion", "-sc"):
        assert name in known
    assert {"--experimental-rerun", "--multirun", "-m", "--cfg", "-cn", "--config-dir"} <= set(
        known
    )
    # what options_first knows how to move: no value, one value, or an optional one of choices
    assert all(a.nargs in (0, None, "?") for a in OPTIONS)
    assert all(a.choices for a in OPTIONS if a.nargs == "?")


@pytest.mark.parametrize("action", OPTIONS, ids=lambda a: a.option_strings[0])
def test_each_option_after_the_overrides_moves_first_with_its_value(action):
    value = [] if action.nargs == 0 else [(action.choices or ["some/path"])[-1]]
    for name in action.option_strings:
        argv = options_first(["train.py", "data=synthetic", name, *value, "seed=1,2"])
        assert argv == ["train.py", name, *value, "data=synthetic", "seed=1,2"]
        if action.dest in ("version", "help"):  # --version prints and exits; covered above
            continue
        parsed = PARSER.parse_args(argv[1:])
        assert parsed.overrides == ["data=synthetic", "seed=1,2"]
        assert getattr(parsed, action.dest) == (value[0] if value else True)


def test_info_takes_a_value_only_when_it_is_one_of_its_choices():
    # `--info` alone means `--info all`; moved before an override it would take that for its value
    assert options_first(["train.py", "data=synthetic", "-i"])[1:] == ["-i=all", "data=synthetic"]
    parsed = parse("data=synthetic", "--info")
    assert (parsed.info, parsed.overrides) == ("all", ["data=synthetic"])
    parsed = parse("data=synthetic", "-i", "defaults", "seed=1")
    assert (parsed.info, parsed.overrides) == ("defaults", ["data=synthetic", "seed=1"])
    parsed = parse("data=synthetic", "--info=searchpath", "seed=1")
    assert (parsed.info, parsed.overrides) == ("searchpath", ["data=synthetic", "seed=1"])
    parsed = parse("data=synthetic", "--info", "-m", "seed=1,2")
    assert (parsed.info, parsed.multirun) == ("all", True)
    assert parsed.overrides == ["data=synthetic", "seed=1,2"]


def test_options_keep_their_order_and_overrides_theirs():
    argv = ["train.py", "b=2", "--cfg", "job", "a=1", "--resolve", "-p=data", "c=3", "--run"]
    assert options_first(argv) == [
        "train.py", "--cfg", "job", "--resolve", "-p=data", "--run", "b=2", "a=1", "c=3",
    ]  # fmt: skip
    parsed = PARSER.parse_args(options_first(argv)[1:])
    assert (parsed.cfg, parsed.resolve, parsed.package, parsed.run) == ("job", True, "data", True)
    assert options_first(["train.py"]) == ["train.py"]
    # not Hydra's: left among the overrides for Hydra's parser to refuse
    assert options_first(["train.py", "--nope", "a=1"]) == ["train.py", "--nope", "a=1"]
