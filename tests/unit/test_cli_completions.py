"""`completions`: scripts generated from the parser, checked by running bash's completion function."""

from __future__ import annotations

import subprocess

import pytest

from ring_actors.cli.completions import command_tree, render
from ring_actors.cli.main import build_parser, run


def _complete_bash(script: str, words: list[str], name: str = "ring-actors") -> list[str]:
    """Run the generated bash completion for `words` (last word = the one being completed)."""
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = f"""
{script}
COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}
_{name.replace("-", "_")}_complete
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True, timeout=10)
    return result.stdout.split()


@pytest.fixture(scope="module")
def bash_script() -> str:
    return render("bash", command_tree(build_parser()))


def test_tree_has_every_command_and_no_alias_duplicates() -> None:
    """Verify the tree lists Ring's commands once each (aliases are not offered twice)."""
    tree = command_tree(build_parser())
    assert {
        "apply",
        "deployment",
        "namespace",
        "user",
        "token",
        "node",
        "context",
        "login",
        "logout",
        "init",
        "doctor",
        "completions",
        "serve",
        "server",
        "config",
        "secret",
        "webhook",
    } <= set(tree.children)
    assert "deployments" not in tree.children
    assert set(tree.children["deployment"].children) == {
        "list",
        "inspect",
        "delete",
        "logs",
        "events",
        "metrics",
        "health-checks",
    }


def test_bash_script_is_valid_syntax(bash_script: str) -> None:
    """Verify bash accepts the generated script."""
    subprocess.run(["bash", "-n"], input=bash_script, text=True, check=True, timeout=10)


def test_bash_completes_commands_subcommands_options_and_values(bash_script: str) -> None:
    """Verify completion of a command, a subcommand after global options, an option, and an option's values."""
    assert _complete_bash(bash_script, ["ring-actors", "dep"]) == ["deployment"]
    assert _complete_bash(bash_script, ["ring-actors", "--context", "prod", "deployment", "l"]) == ["list", "logs"]
    assert "--namespace" in _complete_bash(bash_script, ["ring-actors", "deployment", "list", "--"])
    assert _complete_bash(bash_script, ["ring-actors", "deployment", "list", "-o", ""]) == ["table", "json", "yaml"]
    assert _complete_bash(bash_script, ["ring-actors", "completions", ""])[:3] == ["bash", "zsh", "fish"]


def test_bash_for_an_alias_named_ring() -> None:
    """Verify `--name ring` completes a `ring` alias (Ring users keep their muscle memory)."""
    script = render("bash", command_tree(build_parser()), "ring")
    assert script.rstrip().endswith("complete -o default -F _ring_complete ring")
    assert _complete_bash(script, ["ring", "tok"], name="ring") == ["token"]


def test_zsh_and_fish_scripts_cover_the_tree() -> None:
    """Verify the zsh and fish scripts register completions for subcommands, options and option values."""
    tree = command_tree(build_parser())
    zsh = render("zsh", tree)
    assert zsh.startswith("#compdef ring-actors\n") and zsh.rstrip().endswith("compdef _ring_actors ring-actors")
    assert "'_/deployment/list|-o') compadd -- table json yaml; return ;;" in zsh
    assert "list:list deployments" in zsh
    fish = render("fish", tree)
    assert "complete -c ring-actors -n '__fish_use_subcommand' -a apply" in fish
    list_condition = "__fish_seen_subcommand_from deployment; and __fish_seen_subcommand_from list'"
    assert f"{list_condition} -s o -l output -xa 'table json yaml'" in fish


def test_completions_command_prints_the_script(capsys) -> None:
    """Verify `completions fish` writes the script on stdout and exits 0."""
    assert run(["completions", "fish"]) == 0
    assert capsys.readouterr().out.startswith("# fish completion for ring-actors")
