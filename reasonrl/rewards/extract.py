"""Answer extraction shared by every answer checker.

Every function here is a linear scan over the completion (str.find / rfind and one bounded
loop): no regular expression with backtracking, no external call. That is what lets the
cheap verifiers built on it run inside the trainer process without a timeout (see
docs/rewards.md, "What runs where").
"""

from __future__ import annotations

DEFAULT_ORDER = ("answer_tag", "boxed", "hashes", "answer_is")


def answer_tag(text: str) -> str | None:
    """Content of the last `<answer>...</answer>` pair."""
    end = text.rfind("</answer>")
    if end < 0:
        return None
    start = text.rfind("<answer>", 0, end)
    if start < 0:
        return None
    return text[start + len("<answer>"):end].strip()


def _braced(text: str, open_at: int) -> str | None:
    """The content of the brace group opening at `open_at`, nested braces balanced."""
    depth = 0
    for i in range(open_at, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1:i]
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), nested braces allowed."""
    best = -1
    for command in ("\\boxed", "\\fbox"):
        best = max(best, text.rfind(command + "{"), text.rfind(command + " {"))
    if best < 0:
        return None
    content = _braced(text, text.index("{", best))
    return None if content is None else content.strip()


def after_hashes(text: str) -> str | None:
    """GSM8K style: the rest of the line after the last `####`."""
    start = text.rfind("####")
    if start < 0:
        return None
    line = text[start + 4:].strip().split("\n", 1)[0].strip()
    return line or None


def answer_is(text: str) -> str | None:
    """The phrase after the last "answer is" ("the answer is", "the final answer is"),
    case-insensitive, up to the line's end, without markdown bold or a final period."""
    lowered = text.lower()
    key = "answer is"
    start = lowered.rfind(key)
    if start < 0:
        return None
    rest = text[start + len(key):].split("\n", 1)[0].strip()
    rest = rest.lstrip(":").strip().strip("*").strip()
    # a sentence-final period is punctuation, not part of the answer ("... is 42.")
    if rest.endswith(".") and not rest.endswith(".."):
        rest = rest[:-1].rstrip()
    return rest.strip("*").strip() or None


EXTRACTORS = {
    "answer_tag": answer_tag,
    "boxed": last_boxed,
    "hashes": after_hashes,
    "answer_is": answer_is,
}


def extract_answer(text: str, order: tuple[str, ...] | list[str] | str | None = None) -> str | None:
    """First non-empty result of the extractors named in `order` (default DEFAULT_ORDER).

    Inside an `<answer>` block that itself holds a `\\boxed{}`, the boxed content wins, since
    models often write `<answer>$\\boxed{3}$</answer>`.
    """
    if isinstance(order, str):
        order = tuple(part.strip() for part in order.split(",") if part.strip())
    for name in order or DEFAULT_ORDER:
        if name not in EXTRACTORS:
            raise ValueError(f"unknown answer extractor {name!r}; known: {sorted(EXTRACTORS)}")
        found = EXTRACTORS[name](text)
        if found:
            if name == "answer_tag":
                found = last_boxed(found) or found
            return found
    return None


def strip_math_delimiters(answer: str) -> str:
    """Drop surrounding `$...$`, `\\(...\\)`, `\\[...\\]` so plain checkers see the bare value."""
    s = answer.strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
            return s[len(left):len(s) - len(right)].strip()
    return s


def last_code_block(text: str, languages: tuple[str, ...] = ("python", "py", "python3", "")) -> str | None:
    """Body of the last closed fenced code block whose info string is one of `languages`."""
    found = None
    pos = 0
    while True:
        start = text.find("```", pos)
        if start < 0:
            return found
        header_end = text.find("\n", start)
        if header_end < 0:
            return found
        end = text.find("```", header_end)
        if end < 0:
            return found
        if text[start + 3:header_end].strip().lower() in languages:
            found = text[header_end + 1:end]
        pos = end + 3
