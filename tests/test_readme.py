"""The README is the operator's manual: every setting and every command it can be given is in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands import COMMANDS
from bot.settings import BotSettings
from deployer.settings import DeployerSettings

README = (Path(__file__).parent.parent / "README.md").read_text()


def _variables(settings: type[DeployerSettings] | type[BotSettings]) -> list[str]:
    prefix = str(settings.model_config.get("env_prefix", ""))
    found = []
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        found.append(alias if isinstance(alias, str) else f"{prefix}{name}".upper())
    return found


@pytest.mark.parametrize("settings", [DeployerSettings, BotSettings])
def test_every_setting_is_in_the_readme(settings: type[DeployerSettings]) -> None:
    missing = [v for v in _variables(settings) if f"`{v}`" not in README]
    assert missing == []


def test_every_slash_command_is_in_the_readme() -> None:
    missing = [c for c in COMMANDS if f"/aistack {c}" not in README and f"|{c}" not in README]
    assert missing == []
