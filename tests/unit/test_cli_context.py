"""`context`: listing, current name, token, and `use` rewriting config.toml safely."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli

from ring_actors.cli.context import set_current_context
from ring_actors.cli.main import run
from ring_actors.cli.output import CliError

CONFIG = """\
# my contexts
[contexts.default]
current = true   # the local one
host = "127.0.0.1"
api.scheme = "http"
api.port = 3030

[contexts.prod]
host = "10.0.0.5"
api.scheme = "https"
api.port = 443

[server.runtime.docker]
enabled = true
"""


def test_set_current_context_moves_the_flag_and_keeps_the_rest() -> None:
    """Verify `use prod` sets current on prod only, keeping comments and other tables."""
    text = set_current_context(CONFIG, "prod")
    data = tomli.loads(text)
    assert data["contexts"]["prod"]["current"] is True
    assert data["contexts"]["default"]["current"] is False
    assert data["server"]["runtime"]["docker"]["enabled"] is True
    assert text.startswith("# my contexts\n")
    assert set_current_context(text, "default").count("current = true") == 1


def test_set_current_context_quoted_names() -> None:
    """Verify quoted table names are understood."""
    text = '[contexts."my-ctx"]\nhost = "h"\napi.port = 1\napi.scheme = "http"\n'
    assert tomli.loads(set_current_context(text, "my-ctx"))["contexts"]["my-ctx"]["current"] is True


def test_set_current_context_refuses_what_it_cannot_do_safely() -> None:
    """Verify a layout the line editor cannot handle is refused rather than corrupted."""
    with pytest.raises(CliError):
        set_current_context('contexts = { prod = { host = "h" } }\n', "prod")


def test_context_commands(tmp_path: Path, monkeypatch, capsys) -> None:
    """Verify list/current/use/user-token, honouring the same config file as other commands."""
    (tmp_path / "config.toml").write_text(CONFIG)
    monkeypatch.setenv("RING_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("RING_TOKEN", raising=False)
    monkeypatch.delenv("RING_CONFIG_FILE", raising=False)
    assert run(["context"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows == [
        ["Name", "Host", "API", "Current"],
        ["default", "127.0.0.1", "http://127.0.0.1:3030", "*"],
        ["prod", "10.0.0.5", "https://10.0.0.5:443"],
    ]
    assert run(["context", "current-context"]) == 0
    assert capsys.readouterr().out == "default\n"
    assert run(["--context", "prod", "context", "current"]) == 0
    assert capsys.readouterr().out == "prod\n"
    assert run(["context", "use", "prod"]) == 0
    assert run(["context", "current-context"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "prod"
    assert run(["context", "use", "nope"]) == 1
    assert run(["context", "user-token"]) == 2
    monkeypatch.setenv("RING_TOKEN", "ring_pat_env")
    capsys.readouterr()
    assert run(["context", "user-token"]) == 0
    assert capsys.readouterr().out == "ring_pat_env\n"


def test_unknown_context_is_an_error_but_default_falls_back(tmp_path: Path, monkeypatch, capsys) -> None:
    """Verify a typo'd --context fails (exit 1) while Ring's implicit `default` falls back to the current one."""
    (tmp_path / "config.toml").write_text(CONFIG.replace("[contexts.default]", "[contexts.local]"))
    monkeypatch.setenv("RING_CONFIG_DIR", str(tmp_path))
    assert run(["--context", "typo", "context", "current"]) == 1
    assert "context 'typo' is not defined" in capsys.readouterr().err
    assert run(["--context", "default", "context", "current"]) == 0
    assert capsys.readouterr().out == "local\n"
