"""The command line as a whole: every subcommand's help, models listing, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from inception_fer.cli.main import COMMAND_MODULES, build_parser, main

SUBCOMMANDS = [
    "models",
    "summary",
    "plot-model",
    "train",
    "evaluate",
    "ensemble",
    "predict",
    "serve",
    "explain",
    "benchmark",
    "export",
]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_explains_every_option(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    for action in sub._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
        for option in action.option_strings:
            assert option in help_text


def test_all_command_modules_are_registered() -> None:
    assert len(COMMAND_MODULES) == len(SUBCOMMANDS)


def test_models_lists_and_filters(capsys) -> None:
    assert main(["models"]) == 0
    names = capsys.readouterr().out.split()
    assert {"inception_tutorial", "googlenet", "inception_v3", "mini_xception"} <= set(names)
    assert main(["models", "inception_fer_*"]) == 0
    assert capsys.readouterr().out.split() == [
        "inception_fer_f",
        "inception_fer_f_silu",
        "inception_fer_l",
        "inception_fer_m",
        "inception_fer_s",
    ]


def test_models_details_counts_parameters(capsys) -> None:
    assert main(["models", "mini_xception", "--details"]) == 0
    out = capsys.readouterr().out
    assert "| `mini_xception` | 64x64x1 | 56,951 |" in out


def test_unknown_model_is_one_line(capsys) -> None:
    assert main(["summary", "resnet50"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "unknown model 'resnet50'" in err and "googlenet" in err


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "inception_fer", "models", "googlenet"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "googlenet"
