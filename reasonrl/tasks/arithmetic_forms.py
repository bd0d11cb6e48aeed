"""Surface forms of the arithmetic corpus's columns: how a column is written and read back.

One column of a worked solution (the digits it adds, its sum, the digit written, the carry or
borrow passed on) can be written in several phrasings, so that a model pretrained on the corpus
has seen more than one way of showing the same step:

| form | column | correction of a forgotten carry |
|---|---|---|
| `write` | `7+8=15 write 5 carry 1` | `wait, 7+8=15, so carry 1` |
| `words` | `7 plus 8 is 15, put down 5, carry the 1` | `wait, 7 plus 8 is 15, so carry the 1` |
| `compact` | `units: 7+8=15 -> 5 c1` | `check: units 7+8=15 -> c1` |
| `ru` (foreign) | `семь плюс восемь = 15, пишем 5, перенос 1` | (the solution's form) |
| `zh` (foreign) | `7加8得15，写5进1` | (the solution's form) |

`write` is the corpus's original form. The foreign forms exist so that a controlled fraction of
steps is in another script (the language reward then has something to remove). The reader below
accepts every form in any mix, so the step check verifies all of them. Every pattern is anchored
and bounded: a read is a linear scan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FORMS = ("write", "words", "compact")  # `surface_forms: k` mixes the first k
FOREIGN = ("ru", "zh")
COLUMN_NAMES = ("units", "tens", "hundreds", "thousands")
_N = r"\d{1,30}"
_OP_WORDS = {"+": " plus ", "-": " minus ", "*": " times "}
_RU_OPS = {"+": " плюс ", "-": " минус ", "*": " умножить на "}
_ZH_OPS = {"+": "加", "-": "减", "*": "乘"}
_RU_NUMBERS = ("ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять", "десять",
               "одиннадцать", "двенадцать", "тринадцать", "четырнадцать", "пятнадцать", "шестнадцать",
               "семнадцать", "восемнадцать", "девятнадцать")
_RU_KIND = {"carry": "перенос", "borrow": "заём"}
_ZH_KIND = {"carry": "进", "borrow": "借"}
_SHORT_KIND = {"carry": "c", "borrow": "b"}


class WrongStep(Exception):
    """A step of the chain is false (or unreadable); the message says which and why."""


def column_name(column: int) -> str:
    """'units', 'tens', 'hundreds', 'thousands', then '10^4', '10^5', ..."""
    return COLUMN_NAMES[column] if column < len(COLUMN_NAMES) else f"10^{column}"


@dataclass
class Column:
    """One column as computed: `fact` in symbols (`7+8`, `15-9`, `1*5+1`; None for a column that
    only writes a digit), its `total`, the `digit` written and the `carry` (borrow) passed on.
    `corrected`: the carry is first forgotten, then a self-check restores it."""

    fact: str | None
    total: int
    digit: int
    kind: str  # "carry" or "borrow"
    carry: int
    corrected: bool = False


def _fact_in(fact: str, ops: dict[str, str], number=str) -> str:
    out = re.sub(r"\d+", lambda m: number(int(m[0])), fact)
    return re.sub(r"[-+*]", lambda m: ops[m[0]], out)


def _write(c: Column, index: int, carry: int) -> str:
    fact = f"{c.fact}={c.total} " if c.fact else ""
    return f"{fact}write {c.digit}" + (f" {c.kind} {carry}" if carry else "")


def _words(c: Column, index: int, carry: int) -> str:
    fact = f"{_fact_in(c.fact, _OP_WORDS)} is {c.total}, " if c.fact else ""
    return f"{fact}put down {c.digit}" + (f", {c.kind} the {carry}" if carry else "")


def _compact(c: Column, index: int, carry: int) -> str:
    fact = f"{c.fact}={c.total} " if c.fact else ""
    return f"{column_name(index)}: {fact}-> {c.digit}" + (f" {_SHORT_KIND[c.kind]}{carry}" if carry else "")


def _ru_number(n: int) -> str:
    # column terms are digits, borrowed tops (10-19) and carries: words always, but never fail
    return _RU_NUMBERS[n] if n < len(_RU_NUMBERS) else str(n)


def _ru(c: Column, index: int, carry: int) -> str:
    fact = f"{_fact_in(c.fact, _RU_OPS, _ru_number)} = {c.total}, " if c.fact else ""
    return f"{fact}пишем {c.digit}" + (f", {_RU_KIND[c.kind]} {carry}" if carry else "")


def _zh(c: Column, index: int, carry: int) -> str:
    fact = f"{_fact_in(c.fact, _ZH_OPS)}得{c.total}，" if c.fact else ""
    return f"{fact}写{c.digit}" + (f"{_ZH_KIND[c.kind]}{carry}" if carry else "")


_RENDER = {"write": _write, "words": _words, "compact": _compact, "ru": _ru, "zh": _zh}
_CORRECTION = {
    "write": lambda c, i: f"wait, {c.fact}={c.total}, so {c.kind} {c.carry}",
    "words": lambda c, i: f"wait, {_fact_in(c.fact, _OP_WORDS)} is {c.total}, so {c.kind} the {c.carry}",
    "compact": lambda c, i: f"check: {column_name(i)} {c.fact}={c.total} -> {_SHORT_KIND[c.kind]}{c.carry}",
}
_COLUMN_SEP = {"write": ", ", "words": ". ", "compact": ", "}


def render_column(column: Column, index: int, form: str, language: str | None = None) -> str:
    """The column in `form` (or in the foreign `language`); a corrected column is written with
    its carry forgotten, then the self-check in the solution's `form` that restores it."""
    carry = 0 if column.corrected else column.carry
    text = _RENDER[language or form](column, index, carry)
    if column.corrected:
        text += ", " + _CORRECTION[form](column, index)
    return text


def join_columns(parts: list[str], form: str) -> str:
    """Columns of one step, units first: `, ` between them (`. ` in `words`, whose columns hold commas)."""
    return _COLUMN_SEP[form].join(parts)


def table_fact(a: int, b: int, form: str) -> str:
    """A 1-digit product stated as a whole (`3*4=12`; `3 times 4 is 12` in `words`)."""
    return f"{a} times {b} is {a * b}" if form == "words" else f"{a}*{b}={a * b}"


def verification(expression: str, value: int) -> str:
    """The final self-check of a correct solution: `check: 47+38=85 ok`."""
    return f"check: {expression}={value} ok"


# ---- reading back -------------------------------------------------------------------------------
_FACT = r"[0-9+*-]{1,200}"
_WORD_FACT = rf"{_N}(?: (?:plus|minus|times) {_N}){{0,20}}"
_RU_TERM = rf"(?:[а-яё]{{1,20}}|{_N})"
_NAME = r"(?P<name>units|tens|hundreds|thousands|10\^\d{1,3})"
_COLUMNS = {
    "write": rf"(?:(?P<fact>{_FACT})=(?P<total>{_N}) )?write (?P<digit>{_N})"
             rf"(?: (?P<kind>carry|borrow) (?P<carry>{_N}))?",
    "words": rf"(?:(?P<fact>{_WORD_FACT}) is (?P<total>{_N}), )?put down (?P<digit>{_N})"
             rf"(?:, (?P<kind>carry|borrow) the (?P<carry>{_N}))?",
    "compact": rf"{_NAME}: (?:(?P<fact>{_FACT})=(?P<total>{_N}) )?-> (?P<digit>{_N})"
               rf"(?: (?P<kind>[cb])(?P<carry>{_N}))?",
    "ru": rf"(?:(?P<fact>{_RU_TERM}(?: (?:плюс|минус|умножить на) {_RU_TERM}){{0,20}}) = (?P<total>{_N}), )?"
          rf"пишем (?P<digit>{_N})(?:, (?P<kind>перенос|заём) (?P<carry>{_N}))?",
    "zh": rf"(?:(?P<fact>{_N}(?:[加减乘]{_N}){{0,20}})得(?P<total>{_N})[，,] ?)?写(?P<digit>{_N})"
          rf"(?:(?P<kind>[进借])(?P<carry>{_N}))?",
}
_CORRECTIONS = {
    "write": rf"wait, (?P<fact>{_FACT})=(?P<total>{_N}), so (?P<kind>carry|borrow) (?P<carry>{_N})",
    "words": rf"wait, (?P<fact>{_WORD_FACT}) is (?P<total>{_N}), so (?P<kind>carry|borrow) the (?P<carry>{_N})",
    "compact": rf"check: {_NAME} (?P<fact>{_FACT})=(?P<total>{_N}) -> (?P<kind>[cb])(?P<carry>{_N})",
}
_COLUMN_RES = {form: re.compile(p) for form, p in _COLUMNS.items()}
_CORRECTION_RES = {form: re.compile(p) for form, p in _CORRECTIONS.items()}
_SEP = re.compile(r" ?[,.，] ?")
_TABLES = (re.compile(rf"(?P<a>{_N})\*(?P<b>{_N})=(?P<c>{_N})"),
           re.compile(rf"(?P<a>{_N}) times (?P<b>{_N}) is (?P<c>{_N})"))
_MARKERS = ("write ", "put down ", "-> ", "пишем ", "写")
_KINDS = {"carry": "carry", "borrow": "borrow", "c": "carry", "b": "borrow", "перенос": "carry", "заём": "borrow",
          "进": "carry", "借": "borrow"}
_RU_VALUES = {word: str(i) for i, word in enumerate(_RU_NUMBERS)}
_SYMBOLS = {" plus ": "+", " minus ": "-", " times ": "*", " плюс ": "+", " минус ": "-", " умножить на ": "*",
            "加": "+", "减": "-", "乘": "*"}
_SYMBOL_RE = re.compile("|".join(map(re.escape, _SYMBOLS)))


@dataclass
class ReadColumn:
    """A column as written, in symbols whatever its form; `fix` is the self-check that follows it."""

    text: str
    fact: str | None
    total: int | None
    digit: int | None
    kind: str | None  # "carry", "borrow" or None when nothing is passed on
    carry: int
    name: str | None = None  # the column's label (compact form)
    fix: ReadColumn | None = None


def _symbols(fact: str | None, form: str) -> str | None:
    if fact is None:
        return None
    if form == "ru":
        words = re.split(r"( плюс | минус | умножить на )", fact)
        if any(w not in _RU_VALUES and not w.isdigit() for w in words[::2]):
            raise WrongStep(f"unreadable number in {fact!r}")
        fact = "".join(_RU_VALUES.get(w, w) for w in words)
    return _SYMBOL_RE.sub(lambda m: _SYMBOLS[m[0]], fact)


def _read_one(body: str, pos: int, patterns: dict[str, re.Pattern]) -> tuple[ReadColumn | None, int]:
    for form, pattern in patterns.items():
        m = pattern.match(body, pos)
        if m is not None:
            groups = m.groupdict()
            number = lambda key: None if groups.get(key) is None else int(groups[key])  # noqa: E731
            column = ReadColumn(m[0], _symbols(groups["fact"], form), number("total"), number("digit"),
                                _KINDS.get(groups["kind"]), number("carry") or 0, groups.get("name"))
            return column, m.end()
    return None, pos


def _fragment(body: str, pos: int) -> str:
    return re.split(r"[,，]", body[pos:], maxsplit=1)[0].strip()


def _check_names(column: ReadColumn, index: int) -> None:
    for part in (column, column.fix):
        if part is not None and part.name is not None and part.name != column_name(index):
            raise WrongStep(f"{column_name(index)}: labelled {part.name!r}")


def read_columns(body: str) -> list[ReadColumn]:
    """The columns of one step in any mix of forms, units first, each with the self-check that
    follows it, if any; raises WrongStep naming the first text that is not a column."""
    body, pos, columns = body.strip(), 0, []
    while True:
        column, pos = _read_one(body, pos, _COLUMN_RES)
        if column is None:
            raise WrongStep(f"unreadable column {_fragment(body, pos)!r}")
        sep = _SEP.match(body, pos)
        if sep is not None:
            column.fix, end = _read_one(body, sep.end(), _CORRECTION_RES)
            if column.fix is not None:
                pos, sep = end, _SEP.match(body, end)
        _check_names(column, len(columns))
        columns.append(column)
        if pos == len(body) or (sep is not None and sep.end() == len(body)):
            return columns
        if sep is None:
            raise WrongStep(f"unreadable column {_fragment(body, pos)!r}")
        pos = sep.end()


def read_table(body: str) -> tuple[int, int, int] | None:
    """(a, b, c) of a stated 1-digit product `a*b=c` (or `a times b is c`), else None."""
    for pattern in _TABLES:
        m = pattern.fullmatch(body.strip())
        if m is not None:
            return int(m["a"]), int(m["b"]), int(m["c"])
    return None


def looks_like_steps(text: str) -> bool:
    """Whether `text` holds anything written like a column or a table fact (in any form)."""
    return any(marker in text for marker in _MARKERS) or any(p.search(text) for p in _TABLES)


_VERIFY = re.compile(rf"check: (?P<expr>[0-9+*-]{{1,400}})=(?P<value>{_N}) ok\.?")


def split_verification(reasoning: str) -> tuple[str, tuple[str, int] | None]:
    """(reasoning without it, (expression, value)) when the reasoning ends in a final
    `check: 47+38=85 ok`, else (reasoning, None)."""
    text = reasoning.rstrip()
    start = text.rfind("check: ")
    m = _VERIFY.fullmatch(text, start) if start >= 0 else None
    if m is None:
        return reasoning, None
    return text[:start].rstrip().rstrip(",.;").rstrip(), (m["expr"], int(m["value"]))
