"""Tiny models and a character tokenizer for the sampler tests (no hub, no files)."""

from __future__ import annotations

import torch

VOCAB = 512


def tiny_qwen2(seed: int = 0, vocab: int = VOCAB, layers: int = 2):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(hidden_size=64, num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      intermediate_size=128, vocab_size=vocab, max_position_embeddings=256, eos_token_id=1)
    return Qwen2ForCausalLM(cfg).eval()


def tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                      intermediate_size=128, vocab_size=VOCAB, max_position_embeddings=256, eos_token_id=1,
                      rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
    return LlamaForCausalLM(cfg).eval()


def tiny_gpt2(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=VOCAB, n_positions=256, eos_token_id=1)
    return GPT2LMHeadModel(cfg).eval()


def random_prompts(lengths, seed: int = 0, vocab: int = VOCAB):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(2, vocab, (n,), generator=g).tolist() for n in lengths]


def teacher_forced_logprobs(model, prompt, completion, temperature=1.0):
    """log_softmax(logits / T) of `completion` given `prompt`, from one uncached forward."""
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = model(ids)
        logits = logits if torch.is_tensor(logits) else logits.logits
    logp = torch.log_softmax(logits[0, len(prompt) - 1 : -1].float() / temperature, -1)
    return logp.gather(-1, torch.tensor(completion)[:, None])[:, 0]


def greedy_reference(model, prompt, steps, stop_ids=()):
    """Step-by-step argmax of the full uncached forward."""
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            logits = model(torch.tensor([ids]))
            logits = logits if torch.is_tensor(logits) else logits.logits
            ids.append(int(logits[0, -1].argmax()))
            if ids[-1] in stop_ids:
                break
    return ids[len(prompt):]


class CharTokenizer:
    """id i -> one character; enough for stop strings and texts."""

    alphabet = "abcdefghijklmnopqrstuvwxyz .,!?"
    eos_token_id = 1

    def decode(self, ids, skip_special_tokens=False):
        return "".join("" if (skip_special_tokens and i == 1) else self.alphabet[i % len(self.alphabet)] for i in ids)

    def batch_decode(self, rows, skip_special_tokens=False):
        return [self.decode(r, skip_special_tokens) for r in rows]

    def encode(self, text, add_special_tokens=False):
        return [self.alphabet.index(c) + 2 * len(self.alphabet) for c in text]


def chi2_pvalue(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson chi-square goodness of fit (cells with expected count < 5 pooled)."""
    expected = probs * counts.sum()
    small = expected < 5
    if small.any():
        counts = torch.cat([counts[~small], counts[small].sum()[None]])
        expected = torch.cat([expected[~small], expected[small].sum()[None]])
    stat = ((counts - expected) ** 2 / expected.clamp_min(1e-12)).sum()
    df = len(counts) - 1
    return float(torch.special.gammaincc(torch.tensor(df / 2.0, dtype=torch.float64), stat / 2))


def pattern_batch(batch: int, length: int, vocab: int, generator: torch.Generator, jump: float = 0.2):
    """Sequences that mostly count up by one (mod vocab) and sometimes jump by three."""
    start = torch.randint(0, vocab, (batch, 1), generator=generator)
    steps = torch.where(torch.rand(batch, length - 1, generator=generator) < jump, 3, 1)
    return torch.cat([start, start + steps.cumsum(1)], 1) % vocab


def train_native(model, steps: int, vocab: int, seed: int = 0, lr: float = 3e-3, batch: int = 16, length: int = 32):
    """A few AdamW steps on `pattern_batch` text with the MTP loss, so the MTP draft means something."""
    from reasonrl.model.mtp import mtp_loss

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        ids = pattern_batch(batch, length, vocab, g)
        out = model.forward_train(ids)
        lg = out.logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(lg.reshape(-1, lg.shape[-1]), ids[:, 1:].reshape(-1))
        loss = loss + mtp_loss(out.mtp_logits, ids, 1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def tiny_native_dir(path, seed: int = 0):
    """A random tiny native model with a reasonrl tokenizer trained on R1-style text, saved to `path`
    as a stage saves its `model/` (before the model card is written); returns the tokenizer."""
    from reasonrl.model import create
    from reasonrl.tasks import corpus_text, get_task
    from reasonrl.tokenizer import train_tokenizer

    examples = get_task("arithmetic").examples("train", n=100)
    tok = train_tokenizer([corpus_text(e, "r1") for e in examples], 300, path)
    create("tiny", seed=seed, vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
           eos_token_id=tok.eos_token_id).save_pretrained(path)
    return tok
