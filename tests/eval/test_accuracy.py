"""Held-out accuracy checks answers with the task's verifier, in-process or through the pool."""

import torch

from reasonrl.eval.accuracy import _check, answer_accuracy

EXAMPLES = [{"prompt": "1+1", "answer": "2"}, {"prompt": "half", "answer": "\\frac{1}{2}"}]
TEXTS = [["<answer>2</answer>", "<answer>3</answer>"], ["<answer>0.5</answer>", "<answer>1/3</answer>"]]


def test_in_process_and_pooled_verifiers_agree_on_plain_numbers():
    assert _check("numeric", EXAMPLES, TEXTS) == [[1.0, 0.0], [1.0, 0.0]]
    assert _check("math", EXAMPLES, TEXTS) == [[1.0, 0.0], [1.0, 0.0]]  # math-verify in the worker pool


def test_answer_accuracy_on_a_native_model():
    from reasonrl.model import create

    class Tok:  # every prompt is one token; completions decode to a fixed answer
        eos_token_id = 1
        pad_token_id = 0

        def __call__(self, texts, add_special_tokens=False):
            return {"input_ids": [[2] for _ in texts]}

        def encode(self, text, add_special_tokens=False):
            return [2]

        def decode(self, ids, skip_special_tokens=False):
            return "<answer>2</answer>"

        def batch_decode(self, rows, skip_special_tokens=False):
            return [self.decode(r) for r in rows]

    torch.manual_seed(0)
    result = answer_accuracy(create("tiny", vocab_size=16), Tok(), EXAMPLES[:1] * 3, verifier="numeric",
                             prompt_fn=lambda ex: ex["prompt"], k=2, max_new_tokens=2)
    assert result.accuracy == 1.0 and len(result.correct) == 3 and all(len(r) == 2 for r in result.correct)
