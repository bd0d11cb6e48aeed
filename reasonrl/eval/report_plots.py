"""The report's figures: which curves each plot holds (pure Python, from a run's logs) and their
rendering to PNG (matplotlib, imported only when a figure is drawn).

Every plot appears only when at least one run logged its data; several runs overlay in one plot,
one colour per run and one line style per curve.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Sequence

from reasonrl.eval import analytics as an

FAILURE_SUFFIXES = ("/none_frac", "/timeout_frac", "/error_frac")
STYLES = ("-", "--", ":", "-.")


@dataclass
class Line:
    run: str  # run name: the colour
    label: str  # curve name: the line style
    x: list[float]
    y: list[float]


@dataclass
class Plot:
    name: str  # file name stem under plots/
    title: str
    ylabel: str
    lines: list[Line] = field(default_factory=list)
    stacked: bool = False  # phase times: one stacked-area panel per run
    note: str = ""  # one sentence under the plot saying what to look for
    zero_based: bool = False  # rates: the y axis starts at 0 so that a small rise does not look huge


def verifier_keys(rows: Sequence[dict]) -> list[str]:
    """The per-verifier reward keys (``reward/<name>``) logged in any row, in first-seen order."""
    keys: dict[str, None] = {}
    for row in rows:
        for key in row:
            if (key.startswith("reward/") and key.count("/") == 1 and key not in ("reward/mean", "reward/std")
                    and not key.endswith(FAILURE_SUFFIXES)):
                keys[key] = None
    return list(keys)


def _add(plot: Plot, run: str, label: str, xy: tuple[list[float], list[float]]) -> None:
    if xy[0]:
        plot.lines.append(Line(run, label, list(xy[0]), list(xy[1])))


def _keyed(name: str, title: str, ylabel: str, runs, keys: dict[str, str], note: str = "", stage: str | None = None,
           zero_based: bool = False) -> Plot:
    """A plot of metric keys (key -> curve label) over every run's rows (of one stage when given)."""
    plot = Plot(name, title, ylabel, note=note, zero_based=zero_based)
    for run in runs:
        rows = [r for r in run.metrics if stage is None or r.get("stage") == stage]
        for key, label in keys.items():
            _add(plot, run.name, label, an.series(rows, key))
    return plot


def reflection_plot(runs) -> Plot:
    """R1's words over every response (logged), Dr. GRPO's strict pool from the sampled
    completions, and R1's from the samples when it was not logged."""
    plot = Plot("reflection", "Reflection-word rate", "fraction of responses",
                note="R1 words: wait, mistake, however, but, ...; strict: recheck, double-check, check again, ...",
                zero_based=True)
    for run in runs:
        logged = an.series(run.metrics, "reflection_rate")
        _add(plot, run.name, "R1 words", logged)
        if not logged[0]:
            _add(plot, run.name, "R1 words (samples)", an.reflection_by_step(run.samples))
        strict = an.reflection_by_step(run.samples, an.STRICT_REFLECTION_WORDS)
        _add(plot, run.name, "Dr. GRPO strict (samples)", strict)
    return plot


def behaviour_plots(runs) -> list[Plot]:
    mixing = Plot("lang_mix", "Language mixing", "fraction of responses",
                  note="responses whose chain of thought contains words of another script", zero_based=True)
    errors = Plot("format_errors", "Format errors (sampled completions)", "fraction",
                  note="format reward 0 or, without one, no complete <answer>...</answer>", zero_based=True)
    for run in runs:
        logged = an.series(run.metrics, "lang_mix_rate")
        _add(mixing, run.name, "logged", logged)
        if not logged[0]:
            _add(mixing, run.name, "samples", an.language_mixing_by_step(run.samples))
        _add(errors, run.name, "format errors", an.format_error_by_step(run.samples))
    return [reflection_plot(runs), mixing, errors]


def phase_plot(runs) -> Plot:
    plot = Plot("phase_times", "Time per step by phase", "seconds", stacked=True)
    for run in runs:
        keys = sorted({k for r in run.metrics for k in r if k.startswith("time/")})
        for key in keys:
            _add(plot, run.name, key.removeprefix("time/"), an.series(run.metrics, key))
    return plot


def build_plots(runs) -> list[Plot]:
    """Every plot that has data, in report order."""
    verifiers = sorted({k for run in runs for k in verifier_keys(run.metrics)})
    plots = [
        _keyed("reward", "Reward", "mean reward", runs, {"reward/mean": "mean"}),
        _keyed("reward_verifiers", "Reward per verifier", "mean reward", runs,
               {k: k.removeprefix("reward/") for k in verifiers}),
        _keyed("accuracy", "Accuracy", "accuracy", runs, {"accuracy": "train", "eval/accuracy": "dev"},
               note="train: the step's rollouts; dev: held-out greedy accuracy", zero_based=True),
        _keyed("kl", "KL to the reference", "KL (k3)", runs, {"kl": "kl"}),
        _keyed("entropy", "Policy entropy", "nats per token", runs, {"entropy": "entropy"}),
        _keyed("clip_frac", "Clipped ratio fraction", "fraction of tokens", runs,
               {"clip_frac/low": "low", "clip_frac/high": "high"}, zero_based=True),
        _keyed("length", "Response length", "tokens", runs,
               {"length/mean": "mean", "length/correct": "correct", "length/incorrect": "incorrect"}),
        *behaviour_plots(runs),
        _keyed("batch_health", "Degenerate batches", "fraction", runs,
               {"truncated_frac": "truncated", "zero_std_frac": "zero-spread groups"}, zero_based=True),
        _keyed("process", "Process checks", "rate", runs, {k: k for k in an.PROCESS_KEYS},
               note="chain-of-thought validity and right answers reached by wrong reasoning", zero_based=True),
        _keyed("moe_balance", "Expert load balance (MoE)", "max / mean expert load", runs,
               {"moe/load_max_over_mean": "max/mean"}, note="1.0 is perfectly balanced"),
        phase_plot(runs),
        _keyed("pretrain_loss", "Pretraining loss", "loss", runs,
               {"loss": "loss", "ce_loss": "ce_loss", "mtp_loss": "mtp_loss"}, stage="pretrain"),
    ]
    return [p for p in plots if p.lines]


# ------------------------------------------------------------------------------------------------
# rendering


def render_png(plot: Plot, run_names: Sequence[str]) -> bytes:
    """The plot as PNG bytes (a matplotlib Figure without pyplot, so no global figure state)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    colours = {name: f"C{i % 10}" for i, name in enumerate(run_names)}
    panels = [n for n in run_names if any(l.run == n for l in plot.lines)] if plot.stacked else [None]
    ncols = min(len(panels), 3)
    nrows = -(-len(panels) // ncols)
    # one panel: half the page; several (phase times per run): the page's width, 3 panels a row
    size = (6.4, 3.4) if len(panels) == 1 else (12.4, 3.1 * nrows)
    fig = Figure(figsize=size, dpi=100, layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    # one colour per phase in every panel, and one legend beside them rather than over the areas
    phases = {label: f"C{i % 10}" for i, label in enumerate(dict.fromkeys(l.label for l in plot.lines))}
    for ax, panel in zip(axes, panels):
        if plot.stacked:
            _stacked(ax, [l for l in plot.lines if l.run == panel], panel, len(panels) > 1, phases)
        else:
            _lines(ax, plot.lines, colours, len(run_names) > 1)
            if plot.zero_based and min(min(l.y) for l in plot.lines) >= 0:
                ax.set_ylim(bottom=0, top=max(max(max(l.y) for l in plot.lines) * 1.08, 0.05))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="y", useOffset=False)  # "+5.667" offsets hide the actual level
    axes[0].set_ylabel(plot.ylabel)
    if plot.stacked and plot.lines:
        handles = {label: h for ax in axes for h, label in zip(*ax.get_legend_handles_labels())}
        fig.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize=8, frameon=False)
    fig.suptitle(plot.title, fontsize=11)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _lines(ax, lines: Sequence[Line], colours: dict[str, str], several_runs: bool) -> None:
    labels = list(dict.fromkeys(l.label for l in lines))
    for line in lines:
        # sparse series (held-out evaluation every N steps) are unreadable as lines alone
        marker = "o" if len(line.x) <= 12 else None
        name = f"{line.run}: {line.label}" if several_runs and len(labels) > 1 else (
            line.run if several_runs else line.label)
        ax.plot(line.x, line.y, STYLES[labels.index(line.label) % len(STYLES)], color=colours.get(line.run),
                marker=marker, markersize=3, linewidth=1.4, label=name)
    if several_runs or len(labels) > 1:
        ax.legend(fontsize=8, frameon=False)


def _stacked(ax, lines: Sequence[Line], run: str | None, titled: bool, phase_colours: dict[str, str]) -> None:
    """Phases stacked on the steps all of them logged (a phase missing at a step would misalign)."""
    steps = sorted(set.intersection(*(set(l.x) for l in lines))) if lines else []
    values = [[dict(zip(l.x, l.y))[s] for s in steps] for l in lines]
    if steps:
        ax.stackplot(steps, values, labels=[l.label for l in lines], alpha=0.85,
                     colors=[phase_colours[l.label] for l in lines])
    if titled:
        ax.set_title(run, fontsize=9)
