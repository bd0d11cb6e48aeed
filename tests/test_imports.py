"""Importing reasonrl and building the CLI stay light: heavy packages load where they are used."""

import subprocess
import sys

HEAVY = ("torch", "transformers", "math_verify", "reasoning_gym", "vllm", "matplotlib")


def test_package_and_cli_import_nothing_heavy():
    code = ("import sys, reasonrl, reasonrl.cli, reasonrl.tasks, reasonrl.rewards, reasonrl.eval.metrics;"
            "reasonrl.cli.build_parser();"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
