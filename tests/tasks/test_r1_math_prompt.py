"""The r1_math prompt format: R1's math evaluation prompt, with and without a chat template."""

from reasonrl.tasks.prompts import R1_MATH_INSTRUCTION, build_prompt, resolve_prompt_spec

EXAMPLE = {"prompt": "What is 1+1?"}


class ChatTokenizer:
    chat_template = "stub"

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return "".join(f"<|{m['role']}|>{m['content']}" for m in messages) + "<|assistant|>"


def test_r1_math_uses_the_chat_template_without_a_system_message():
    text = build_prompt(EXAMPLE, ChatTokenizer(), "r1_math")
    assert R1_MATH_INSTRUCTION == "Please reason step by step, and put your final answer within \\boxed{}."
    assert text == f"<|user|>What is 1+1?\n{R1_MATH_INSTRUCTION}<|assistant|><think>\n"
    assert build_prompt(EXAMPLE, ChatTokenizer(), "r1_math", prefill="<think>").endswith("<|assistant|><think>")


def test_r1_math_without_a_chat_template_is_the_short_conversation():
    assert build_prompt(EXAMPLE, None, "r1_math") == f"User: What is 1+1?\n{R1_MATH_INSTRUCTION}\nAssistant: <think>\n"


def test_r1_math_is_a_selectable_format():
    assert resolve_prompt_spec("r1_math").prompt_format == "r1_math"
