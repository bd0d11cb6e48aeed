"""Text formats shared by the corpora and RL: plain worked solutions and the R1-Zero template."""

from __future__ import annotations

import random

# The R1-Zero template (DeepSeek-R1, table 1), shortened for small models with short contexts.
# Its first line is the instruction; the rest is the User/Assistant conversation of R1_SHORT_TEMPLATE.
R1_ZERO_INSTRUCTION = (
    "A conversation between User and Assistant. The User asks a question and the Assistant "
    "solves it. The Assistant first thinks about the reasoning process and then gives the answer. "
    "The reasoning process and the answer are enclosed within <think> </think> and "
    "<answer> </answer> tags."
)


def final_answer(example: dict) -> str:
    """The answer the worked solution reaches (differs from `answer` for a corrupted solution)."""
    return str(example.get("meta", {}).get("solution_answer", example["answer"]))


def render_solution(example: dict) -> str:
    """Plain corpus text: `{prompt}\\n{solution}\\nAnswer: {final answer}` (no solution line if none)."""
    lines = [example["prompt"]]
    if example.get("solution"):
        lines.append(example["solution"])
    lines.append(f"Answer: {final_answer(example)}")
    return "\n".join(lines)


# The same conversation without the instruction: for tiny models that learned the <think>/<answer>
# format in pretraining, the instruction is ~60 tokens of context that carry no information.
R1_SHORT_TEMPLATE = "User: {prompt}\nAssistant: "
R1_ZERO_TEMPLATE = R1_ZERO_INSTRUCTION + "\n" + R1_SHORT_TEMPLATE


def r1_zero_prompt(example: dict) -> str:
    """The R1-Zero prompt for `example`; it ends with 'Assistant: ' and the model continues."""
    return R1_ZERO_TEMPLATE.format(prompt=example["prompt"])


def r1_short_prompt(example: dict) -> str:
    """The R1-Zero conversation without the instruction (tiny-model corpora and RL)."""
    return R1_SHORT_TEMPLATE.format(prompt=example["prompt"])


def r1_completion(example: dict) -> str:
    """Target completion `<think>{solution}</think><answer>{final answer}</answer>`."""
    return f"<think>{example.get('solution', '')}</think><answer>{final_answer(example)}</answer>"


def corpus_text(example: dict, template: str = "plain") -> str:
    """One training document: `plain` (render_solution), `r1` (R1-Zero prompt + completion) or
    `r1_short` (the short conversation + completion)."""
    if template == "plain":
        return render_solution(example)
    if template == "r1":
        return r1_zero_prompt(example) + r1_completion(example)
    if template == "r1_short":
        return r1_short_prompt(example) + r1_completion(example)
    raise ValueError(f"unknown corpus template '{template}' (expected 'plain', 'r1' or 'r1_short')")


# Plain endings of an untagged completion, for a corpus in which the tag format is a minority.
PLAIN_ENDINGS = ("Answer: {answer}", "The answer is {answer}.")


def plain_completion(example: dict, ending: int = 0) -> str:
    """An untagged completion: the worked solution, then `Answer: N` (ending 0) or
    `The answer is N.` (ending 1) on its own line."""
    end = PLAIN_ENDINGS[ending].format(answer=final_answer(example))
    return f"{example['solution']}\n{end}" if example.get("solution") else end


def mixed_completions(examples: list[dict], tag_fraction: float = 1.0, seed: int = 0) -> list[str]:
    """Completions of which round(tag_fraction * n), chosen by a seeded draw, are `r1_completion`
    and the rest `plain_completion` with a drawn ending: the tag format a minority, so that an
    R1-Zero run on a base pretrained on them has a format to learn. tag_fraction 1 (the
    default) is all tags and draws nothing."""
    if not 0.0 <= tag_fraction <= 1.0:
        raise ValueError(f"tag_fraction must be in [0, 1], got {tag_fraction!r}")
    if tag_fraction == 1.0:
        return [r1_completion(ex) for ex in examples]
    rng = random.Random(f"corpus-tags-{seed}")
    tagged = set(rng.sample(range(len(examples)), round(tag_fraction * len(examples))))
    return [r1_completion(ex) if i in tagged else plain_completion(ex, rng.randrange(len(PLAIN_ENDINGS)))
            for i, ex in enumerate(examples)]
