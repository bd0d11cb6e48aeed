"""The command line: help everywhere, version, config inspection, one-line user errors."""

import dataclasses
import subprocess
import sys

import pytest

from reasonrl import __version__
from reasonrl.cli import STAGES, build_parser, main, stage_config_class


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "reasonrl", *args], capture_output=True, text=True, timeout=120)


def test_version():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"reasonrl {__version__}"


def test_every_command_has_help(capsys):
    parser = build_parser()
    commands = [a for a in parser._subparsers._group_actions[0].choices]
    assert {"config", *STAGES} <= set(commands)
    for command in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: reasonrl " + command in capsys.readouterr().out


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_config_show_lists_keys(stage, capsys):
    assert main(["config", "show", stage]) == 0
    out = capsys.readouterr().out
    trains = "optim" in {f.name for f in dataclasses.fields(stage_config_class(stage))}  # rejection only samples
    assert "run.seed" in out and ("optim.lr" in out) == trains


def test_unknown_key_is_one_line_exit_2(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("optim:\n  lrr: 0.1\n")
    stage = "pretrain"
    out = run_cli(stage, str(cfg))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "optim.lrr" in lines[0] and "did you mean 'optim.lr'" in lines[0]
    assert "Traceback" not in out.stderr


def test_missing_config_file_is_one_line(tmp_path):
    out = run_cli("pretrain", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2 and "config file not found" in out.stderr and "Traceback" not in out.stderr


def test_debug_shows_traceback(tmp_path):
    out = run_cli("pretrain", str(tmp_path / "nope.yaml"), "--debug")
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_docs_config_reference_is_up_to_date(capsys):
    from pathlib import Path

    assert main(["config", "markdown"]) == 0
    generated = capsys.readouterr().out
    committed = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    assert committed == generated, "docs/config.md is stale: run `make docs`"
