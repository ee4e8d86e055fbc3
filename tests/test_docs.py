"""The command examples in README.md and `--help` compose, and say which data they run on."""

from __future__ import annotations

import re
import shlex

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from virnucpro_trainer.config import register_configs, validate

from conftest import ROOT

register_configs()


def examples(text: str) -> list[str]:
    """Every `python train.py ...` command in the text's shell blocks, continuation lines joined,
    comments dropped."""
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    joined = "\n".join(blocks).replace("\\\n", " ")
    return [
        line.split(" #")[0].strip()
        for line in joined.splitlines()
        if line.strip().startswith("python train.py")
    ]


def help_examples() -> list[str]:
    text = (ROOT / "conf/hydra/help/train_help.yaml").read_text()
    return [
        line.strip().split("  ")[0]
        for line in text.splitlines()
        if line.strip().startswith("python train.py") and "[" not in line  # not the usage line
    ]


README = examples((ROOT / "README.md").read_text())


def first_of_each_sweep(args: list[str]) -> list[str]:
    """A multirun command's first job: `seed=1,2,3` -> `seed=1`."""
    parser = OverridesParser.create()
    out = []
    for arg in args:
        override = parser.parse_override(arg)
        if override.is_sweep_override():
            first = next(iter(override.sweep_string_iterator()))
            out.append(f"{override.get_key_element()}={first}")
        else:
            out.append(arg)
    return out


def test_the_readme_has_examples():
    assert len(README) >= 10


@pytest.mark.parametrize("command", README + help_examples())
def test_every_example_composes_and_names_its_data(command):
    args = shlex.split(command)[2:]
    if not args or args[0] == "--help" or any(a.startswith("resume=") for a in args):
        return  # resume= re-applies a run's own overrides; --help composes nothing
    overrides = first_of_each_sweep([a for a in args if not a.startswith("-") and a != "job"])
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    validate(cfg)
    # on a fresh checkout only the demo data exists: an example names it, or the user's own
    assert cfg.data.synthetic.enabled or any(a.startswith("data.root=") for a in args), command
