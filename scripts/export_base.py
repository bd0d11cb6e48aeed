"""Export an untrained model with the prompt card of an RL stage of a recipe, so that `reasonrl eval`
prompts the base exactly as the trained model is prompted (same format, system text and prefill).

    python scripts/export_base.py recipes/smollm2-grpo.yaml grpo runs/smollm2-base

Without this, `reasonrl eval smollm2` falls back to the default prompt (no recipe system text, no
prefill), and a before/after comparison would change the prompt as well as the weights.
"""

from __future__ import annotations

import sys


def main(recipe: str, stage: str, out: str) -> None:
    from reasonrl.model.loading import load_policy_bundle
    from reasonrl.pipeline import load_recipe
    from reasonrl.tasks.prompts import write_model_card
    from reasonrl.train.checkpoint import export_model

    stages = {s.name: s for s in load_recipe(recipe).stages}
    if stage not in stages or stages[stage].kind != "rl":
        rl_stages = [name for name, s in stages.items() if s.kind == "rl"]
        sys.exit(f"export_base: {recipe} has no rl stage {stage!r} (its rl stages: {', '.join(rl_stages) or 'none'})")
    cfg = stages[stage].cfg
    bundle = load_policy_bundle(cfg.model.path, cfg.model.gguf_file)
    policy, tokenizer = bundle.policy, bundle.tokenizer
    export_model(out, policy, tokenizer, lambda directory: write_model_card(
        directory, cfg.data.prompt_format, tokenizer, cfg.data.system, cfg.data.prefill, tuple(cfg.rl.stop_strings)))
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python scripts/export_base.py RECIPE STAGE OUT_DIR")
    main(*sys.argv[1:])
