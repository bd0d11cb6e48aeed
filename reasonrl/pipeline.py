"""`reasonrl run RECIPE`: the R1 pipeline as one resumable recipe of stages.

A recipe is YAML:

    name: r1-tiny                     # the pipeline's directory: <run.dir>/<name>/
    run: {dir: runs, seed: 0, threads: 2}     # defaults for every stage's `run` section
    stages:
      - name: base
        kind: pretrain                # a key of reasonrl.stages.STAGE_KINDS
        config: {budget: {steps: 800}}
      - name: r1_zero
        kind: rl
        init: base.model              # shorthand for inputs: {model.path: base.model}
        config: {rl: {steps: 60}}
      - name: cold_start
        kind: sft
        init: base.model
        data: rejection.dataset       # shorthand for inputs: {data.path: rejection.dataset}

Each stage runs as its own command would, in `<pipeline>/stages/<name>/`. Everything is checked
before anything runs: kinds, references (to an earlier stage's declared output), and every stage's
config. Re-running skips complete stages, resumes a half-done one from its checkpoint, and re-runs
a stage whose config or inputs changed together with everything downstream of it (its old
directory is kept aside as `<name>.superseded-N`). `lineage.json` records which config and inputs
made which outputs; `summary.json` the stages' results.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonrl.config import ConfigError, read_yaml, set_dotted
from reasonrl.stages import STAGE_KINDS

SHORTHANDS = {"init": "model.path", "data": "data.path", "teacher": "teacher.path", "student": "student.path"}
RECIPE_KEYS = {"name", "run", "stages", "description"}
STAGE_KEYS = {"name", "kind", "config", "inputs", *SHORTHANDS}


@dataclass
class PlannedStage:
    name: str
    kind: str
    raw: dict[str, Any]  # the stage's config mapping, inputs resolved to paths
    inputs: dict[str, Any]  # config key -> "stage.output" (or a list of them)
    cfg: Any = None
    fingerprint: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class Plan:
    name: str
    root: Path
    stages: list[PlannedStage]


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Plan:
    """Read, override and check a recipe; every stage config is built (validated) here."""
    from reasonrl.config import parse_override

    recipe = read_yaml(path)
    for item in overrides:
        key, value = parse_override(item)
        _apply_override(recipe, key, value, item)
    return plan(recipe, str(path))


def _apply_override(recipe: dict, key: str, value: Any, item: str) -> None:
    """`run.seed=1` (every stage), `stages.<name>.<key>=v` (one stage's config), `name=...`."""
    if key.startswith("stages."):
        parts = key.split(".", 2)
        name, rest = parts[1], parts[2] if len(parts) == 3 else ""
        stage = next((s for s in recipe.get("stages", []) if isinstance(s, dict) and s.get("name") == name), None)
        if stage is None or not rest:
            raise ConfigError(f"override {item!r}: no stage named {name!r} in the recipe (expected stages.<name>.<key>=...)")
        set_dotted(stage.setdefault("config", {}), rest, value)
    elif key == "name" or key.startswith("run."):
        set_dotted(recipe, key, value)
    else:
        raise ConfigError(f"override {item!r}: a recipe takes name=..., run.<key>=... or stages.<name>.<key>=...")


def plan(recipe: dict, source: str) -> Plan:
    unknown = set(recipe) - RECIPE_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown recipe key '{sorted(unknown)[0]}' (expected {', '.join(sorted(RECIPE_KEYS))})")
    stages = recipe.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"{source}: a recipe needs a non-empty list 'stages'")
    run = dict(recipe.get("run") or {})
    name = str(recipe.get("name") or Path(source).stem)
    root = Path(run.pop("dir", "runs")) / name
    planned: list[PlannedStage] = []
    for index, entry in enumerate(stages):
        planned.append(_plan_stage(entry, index, planned, run, root, source))
    for stage in planned:
        stage.fingerprint = _fingerprint(stage, planned)
    return Plan(name, root, planned)


def _plan_stage(entry: Any, index: int, earlier: list[PlannedStage], run: dict, root: Path, source: str) -> PlannedStage:
    where = f"{source}: stage {index + 1}"
    if not isinstance(entry, dict) or "name" not in entry or "kind" not in entry:
        raise ConfigError(f"{where}: each stage needs 'name' and 'kind'")
    name, kind = str(entry["name"]), entry["kind"]
    where = f"{source}: stage '{name}'"
    if kind not in STAGE_KINDS:
        raise ConfigError(f"{where}: unknown stage kind {kind!r} (kinds: {', '.join(STAGE_KINDS)})")
    if any(s.name == name for s in earlier):
        raise ConfigError(f"{where}: the name is used twice")
    bad = set(entry) - STAGE_KEYS
    if bad:
        raise ConfigError(f"{where}: unknown key '{sorted(bad)[0]}' (expected {', '.join(sorted(STAGE_KEYS))})")
    inputs = {SHORTHANDS[k]: entry[k] for k in SHORTHANDS if k in entry}
    inputs.update(entry.get("inputs") or {})
    raw = json.loads(json.dumps(entry.get("config") or {}))  # a deep copy
    for key, value in {**run, "dir": str(root / "stages"), "name": name}.items():
        raw.setdefault("run", {}).setdefault(key, value)
    for key, ref in inputs.items():
        set_dotted(raw, key, _resolve(ref, earlier, root, where))
    stage = PlannedStage(name, kind, raw, inputs)
    stage.cfg = _build_config(stage, where)
    stage.outputs = {out: str(root / "stages" / name / rel) for out, rel in STAGE_KINDS[kind].outputs.items()}
    return stage


def _resolve(ref: Any, earlier: list[PlannedStage], root: Path, where: str) -> Any:
    """"stage.output" -> that output's path; a list resolves item by item; other values stay."""
    if isinstance(ref, list):
        return [_resolve(r, earlier, root, where) for r in ref]
    if not isinstance(ref, str) or "." not in ref:
        raise ConfigError(f"{where}: input {ref!r} must name an earlier stage's output as <stage>.<output>")
    stage_name, output = ref.split(".", 1)
    source = next((s for s in earlier if s.name == stage_name), None)
    if source is None:
        raise ConfigError(f"{where}: input {ref!r} names no earlier stage (a stage can only use outputs of the "
                          "stages before it)")
    if output not in source.outputs:
        raise ConfigError(f"{where}: stage '{stage_name}' ({source.kind}) has no output {output!r} "
                          f"(outputs: {', '.join(source.outputs)})")
    return source.outputs[output]


def _build_config(stage: PlannedStage, where: str) -> Any:
    import importlib

    from reasonrl.config import build

    kind = STAGE_KINDS[stage.kind]
    cls = getattr(importlib.import_module(kind.module), kind.config)
    return build(cls, stage.raw, source=where)


def _fingerprint(stage: PlannedStage, stages: list[PlannedStage]) -> str:
    """Hash of the stage's resolved config and of the fingerprints of the stages it reads from."""
    from reasonrl.config import to_dict
    from reasonrl.stages.runner import IGNORED_CHANGES, LATER_KEYS

    config = to_dict(stage.cfg)
    for dotted in IGNORED_CHANGES:  # how a run is shown or where it lives is no change to what it computes
        section, _, key = dotted.partition(".")
        (config.get(section) or {}).pop(key, None)
    for dotted, value in LATER_KEYS.items():  # at their original value: the fingerprint recorded before them
        section, _, key = dotted.partition(".")
        if (config.get(section) or {}).get(key, object()) == value:
            config[section].pop(key)
    upstream = sorted({ref.split(".", 1)[0] for ref in _refs(stage.inputs)})
    parts = [json.dumps(config, sort_keys=True, default=str)]
    parts += [next(s.fingerprint for s in stages if s.name == u) for u in upstream]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _refs(inputs: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for value in inputs.values():
        out += value if isinstance(value, list) else [value]
    return [str(v) for v in out]


# ---- running ----------------------------------------------------------------------------------
LINEAGE_FILE, SUMMARY_FILE = "lineage.json", "summary.json"


def run_plan(plan: Plan, console) -> dict[str, Any]:
    """Run the stages in order (skipping complete ones, resuming a half-done one, re-running
    changed ones and their dependents); returns the summary."""
    import importlib

    lineage = _read_json(plan.root / LINEAGE_FILE)
    results: dict[str, Any] = {}
    for stage in plan.stages:
        _supersede_if_changed(plan, stage, lineage.get(stage.name), console)
        console.print(f"[bold]run: stage '{stage.name}' ({stage.kind})[/bold]")
        main = importlib.import_module(STAGE_KINDS[stage.kind].module).main
        result = main(stage.cfg)
        lineage[stage.name] = {"kind": stage.kind, "fingerprint": stage.fingerprint,
                               "inputs": {key: {"from": ref, "path": _get(stage.raw, key)}
                                          for key, ref in stage.inputs.items()},
                               "outputs": result.outputs, "config": str(plan.root / "stages" / stage.name / "config.yaml")}
        _write_json(plan.root / LINEAGE_FILE, lineage)
        results[stage.name] = result
    summary = {"pipeline": plan.name, "stages": {name: _stage_summary(r) for name, r in results.items()}}
    for stage in plan.stages:  # each evaluated model's test-split numbers, under its (stage) name
        if stage.kind == "eval":
            summary["stages"][stage.name] = {"outputs": results[stage.name].outputs,  # its numbers are per model
                                             "reused": results[stage.name].reused}
            for model_name, row in _eval_models(results[stage.name]).items():
                summary["stages"].setdefault(model_name, {}).update(row)
    _write_json(plan.root / SUMMARY_FILE, summary)
    return summary


def _eval_models(result) -> dict[str, dict[str, Any]]:
    """name -> pass@1, cons@k (as cons@<k>), greedy, lengths, rates, CIs and the model's checkpoint."""
    document = _read_json(Path(result.outputs["results"]))
    rows = {}
    for m in document.get("models", []):
        row = {key: m.get(key) for key in ("pass@1", "greedy", "mean_length", "reflection_rate", "lang_mix_rate",
                                           "format_failure_rate", "process", "ci95")}
        row[f"cons@{m['k']}"] = m.get("cons@k")
        row.update({"split": document.get("settings", {}).get("split"), "task": m.get("task"), "checkpoint": m["model"]})
        rows[m["name"]] = row
    return rows


def write_report(plan: Plan, console) -> Path | None:
    """The HTML report over the pipeline's training and evaluation stages (skipped with a warning
    when it cannot be made, e.g. matplotlib missing: the pipeline's results stand without it)."""
    from reasonrl.eval.report import build_report

    dirs = [plan.root / "stages" / s.name for s in plan.stages
            if (plan.root / "stages" / s.name / "metrics.jsonl").is_file() or s.kind == "eval"]
    try:
        return build_report([str(d) for d in dirs], str(plan.root), [d.name for d in dirs])
    except (ImportError, ValueError, OSError) as exc:
        console.warn(f"run: no report ({exc})")
        return None


def _supersede_if_changed(plan: Plan, stage: PlannedStage, record: dict | None, console) -> None:
    """A stage whose config or inputs changed since it ran is re-run from scratch; its old
    directory is kept aside, never deleted."""
    directory = plan.root / "stages" / stage.name
    if record is None or record.get("fingerprint") == stage.fingerprint or not directory.exists():
        return
    n = 1
    while directory.with_name(f"{stage.name}.superseded-{n}").exists():
        n += 1
    aside = directory.with_name(f"{stage.name}.superseded-{n}")
    directory.rename(aside)
    console.print(f"run: stage '{stage.name}' changed (its config or an input); the previous run is kept as "
                  f"{aside.name} and the stage runs again")


def _stage_summary(result) -> dict[str, Any]:
    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float, str)) or v is None}
    return {**metrics, "outputs": result.outputs, "checkpoint": result.outputs.get("model"), "reused": result.reused}


def _get(tree: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _write_json(path: Path, obj: Any) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# short headers, so that the table fits an 80-column terminal (or log file) with every stage
COLUMN_NAMES = {"mean_length": "len", "reflection_rate": "reflect", "lang_mix_rate": "mix", "eval/accuracy": "dev"}


def summary_table(summary: dict[str, Any], root: Path,
                  keys=("pass@1", "greedy", "mean_length", "reflection_rate", "lang_mix_rate", "eval/accuracy")):
    """One row per stage (and per evaluated model): test-split numbers of the evaluated models, the
    dev accuracy each training stage measured at its end. Paths and the rest are in summary.json."""
    from rich.table import Table

    table = Table(title=f"pipeline {summary['pipeline']} ({root})")
    shown = [k for k in keys if any(k in s for s in summary["stages"].values())]
    table.add_column("stage", no_wrap=True)
    for column in shown:
        table.add_column(COLUMN_NAMES.get(column, column), justify="right", no_wrap=True)
    for name, s in summary["stages"].items():
        table.add_row(name, *[_cell(s.get(k)) for k in shown])
    return table


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"
    return "" if value is None else str(value)


# ---- command line -----------------------------------------------------------------------------
def add_parser(sub):
    p = sub.add_parser("run", help="run a recipe: the R1 pipeline's stages in order, resumable",
                       description="Run a YAML recipe of stages (see docs/pipeline.md). Re-running skips complete "
                                   "stages, resumes a half-done one and re-runs changed ones with their dependents.")
    p.add_argument("recipe", help="recipe YAML, e.g. recipes/r1-tiny.yaml")
    p.add_argument("overrides", nargs="*", help="name=..., run.<key>=... (every stage) or stages.<name>.<key>=...")
    p.add_argument("--dry-run", action="store_true", help="check the recipe and print the plan; run nothing")
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    from reasonrl.runlog import Run

    overrides = list(args.overrides) + (["run.quiet=true"] if args.quiet else [])
    plan_ = load_recipe(args.recipe, overrides)
    console = Run(None, quiet=args.quiet)
    if args.dry_run:
        for stage in plan_.stages:
            refs = ", ".join(f"{k} <- {v}" for k, v in stage.inputs.items())
            console.print(f"{stage.name} ({stage.kind}) -> {plan_.root / 'stages' / stage.name}" + (f"  [{refs}]" if refs else ""))
        return 0
    summary = run_plan(plan_, console)
    console.print(summary_table(summary, plan_.root))
    if all(r.get("reused") for r in summary["stages"].values() if "reused" in r):
        console.print(f"run: every stage of {plan_.root} is already complete; nothing ran")
    report = write_report(plan_, console)
    console.print(f"run: summary in {plan_.root / SUMMARY_FILE}, lineage in {plan_.root / LINEAGE_FILE}"
                  + (f", report {report}" if report else ""))
    return 0
