from __future__ import annotations

import re
from pathlib import Path

from config import Settings
from config.settings import ENV_PREFIX

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_readme_opens_with_exactly_the_two_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make run", "make test"]
    assert README.index("```sh") < README.index("## ")


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"`(CALSYNC_[A-Z_]+)`", README))
    expected = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert expected - documented == set()
    assert documented - expected == set()
