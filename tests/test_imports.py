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


def test_package_data_patterns_match_files():
    """Every package-data glob in pyproject.toml names files that exist (a non-editable install
    ships exactly those)."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package, patterns in data.items():
        for pattern in patterns:
            assert list((root / package.replace(".", "/")).glob(pattern)), f"{package}: {pattern} matches nothing"


def test_declared_dependencies_are_imported_somewhere():
    """No declared-but-unused runtime dependency (each is imported by the package)."""
    import re
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    source = "\n".join(p.read_text() for p in (root / "reasonrl").rglob("*.py"))
    modules = {"math-verify": "math_verify", "reasoning-gym": "reasoning_gym", "pyyaml": "yaml"}
    indirect = {"gguf"}  # transformers reads GGUF checkpoints (SmolLM2) with it
    for dep in deps:
        name = re.split(r"[<>=!\[ ]", dep, maxsplit=1)[0]
        if name in indirect:
            continue
        module = modules.get(name, name.replace("-", "_"))
        assert re.search(rf"^\s*(import|from) {module}\b", source, re.M), f"{name} is declared but never imported"
