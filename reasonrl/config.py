"""Typed stage configs: dataclasses, YAML files and dotted command-line overrides.

Every stage declares one dataclass tree; each field carries its help text in
`field(metadata={"help": ...})`. `load_config(Cls, path, overrides)` reads YAML, applies
`a.b=c` overrides and checks every key and type, failing with one `ConfigError` line that
names the key, where it came from and (for unknown keys) the closest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Union

import yaml


class ConfigError(ValueError):
    """A configuration problem, already phrased as one line for the user."""


class FieldProblem(ValueError):
    """Raised by a config dataclass's `__post_init__` for a value its declared bounds cannot
    express (e.g. a model shape); `build` turns it into a ConfigError naming the key and source."""

    def __init__(self, name: str, problem: str):
        super().__init__(problem)
        self.name = name


@dataclass(frozen=True)
class Bounds:
    """The allowed range of a numeric key (of each item, for a list), declared beside its default."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    length: int | None = None  # exact length of a list value

    def violation(self, value: Any) -> str | None:
        """What is wrong with `value`, or None when it is allowed."""
        if isinstance(value, (list, tuple)):
            if self.length is not None and len(value) != self.length:
                return f"a list of exactly {self.length} values"
            return next((v for v in map(self._item, value) if v), None)
        return self._item(value)

    def _item(self, value: Any) -> str | None:
        if value is None or not isinstance(value, (int, float)):
            return None
        ok = ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
              and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))
        return None if ok else self.describe()

    def describe(self) -> str:
        parts = [f"{op} {_num(v)}" for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
                 if v is not None]
        text = " and ".join(parts)
        if self.length is not None:
            text = f"{self.length} values" + (f", each {text}" if text else "")
        return text


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def opt(default: Any = MISSING, help: str = "", *, factory: Any = MISSING, ge: float | None = None,
        gt: float | None = None, le: float | None = None, lt: float | None = None, length: int | None = None) -> Any:
    """A dataclass field with help text and, for numbers, its allowed range (the config reference
    and `config show` are generated from both; `build` enforces the range)."""
    metadata: dict[str, Any] = {"help": help}
    if any(v is not None for v in (ge, gt, le, lt, length)):
        metadata["bounds"] = Bounds(ge, gt, le, lt, length)
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def section(cls: type, help: str = "") -> Any:
    """A nested config section."""
    return field(default_factory=cls, metadata={"help": help})


# ---- reading ---------------------------------------------------------------------------------
def load_config(cls: type, path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Any:
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        raw = read_yaml(path)
        source = str(path)
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(raw, key, value)
    return build(cls, raw, source=source, overrides=overrides)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys, got {type(data).__name__}")
    return data


def parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected key=value, e.g. optim.lr=1e-4")
    key, text = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {item!r}: empty key")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return key, value


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def build(cls: type, raw: dict[str, Any], *, source: str = "defaults", overrides=(), prefix: str = "") -> Any:
    """Construct `cls` from a nested mapping, checking keys and types."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = prefix + str(key)
        if key not in known:
            raise ConfigError(_unknown_key_message(cls, dotted, prefix, source, overrides))
        kwargs[key] = _coerce(hints[key], value, dotted, source, overrides)
        _check_bounds(known[key], kwargs[key], dotted, source, overrides)
    missing = [n for n, f in known.items() if n not in kwargs and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise ConfigError(f"missing required config key '{prefix + missing[0]}' ({_where(prefix + missing[0], source, overrides)})")
    try:
        return cls(**kwargs)
    except FieldProblem as exc:
        dotted = prefix + exc.name
        raise ConfigError(f"config key '{dotted}' in {_where(dotted, source, overrides)}: {exc}, "
                          f"got {kwargs.get(exc.name)!r}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: invalid value in section '{prefix.rstrip('.') or cls.__name__}': {exc}") from None


def _check_bounds(f: dataclasses.Field, value: Any, dotted: str, source: str, overrides) -> None:
    bounds = f.metadata.get("bounds")
    problem = bounds.violation(value) if bounds is not None else None
    if problem:
        raise ConfigError(f"config key '{dotted}' in {_where(dotted, source, overrides)} must be {problem}, got {value!r}")


def _unknown_key_message(cls: type, dotted: str, prefix: str, source: str, overrides) -> str:
    candidates = [prefix + name for name in all_keys(cls)]
    close = difflib.get_close_matches(dotted, candidates, n=1, cutoff=0.5)
    hint = f" (did you mean '{close[0]}'?)" if close else f" (valid keys here: {', '.join(f.name for f in fields(cls))})"
    return f"unknown config key '{dotted}' in {_where(dotted, source, overrides)}{hint}"


def _where(dotted: str, source: str, overrides) -> str:
    for item in reversed(overrides):  # the last override of a key is the one in effect
        if item.split("=", 1)[0].strip() == dotted or dotted.startswith(item.split("=", 1)[0].strip() + "."):
            return f"command-line override '{item}'"
    return source


def _coerce(tp: Any, value: Any, dotted: str, source: str, overrides) -> Any:
    origin = typing.get_origin(tp)
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{dotted}' in {_where(dotted, source, overrides)} is a section: expected a mapping, got {value!r}")
        return build(tp, value, source=source, overrides=overrides, prefix=dotted + ".")
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, dotted, source, overrides)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:  # `X | None`: X's own message says more than a list of types
            raise errors[0]
        raise ConfigError(_type_message(dotted, tp, value, source, overrides))
    if tp is Any:
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(_type_message(dotted, tp, value, source, overrides))
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return [_coerce(item_tp, v, f"{dotted}[{i}]", source, overrides) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(_type_message(dotted, tp, value, source, overrides))
        args = typing.get_args(tp)
        val_tp = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(val_tp, v, f"{dotted}.{k}", source, overrides) for k, v in value.items()}
    return _coerce_scalar(tp, value, dotted, source, overrides)


def _coerce_scalar(tp: Any, value: Any, dotted: str, source: str, overrides) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        number = _as_float(value)
        if number is not None and math.isfinite(number):
            return number
        if number is not None:
            raise ConfigError(f"config key '{dotted}' in {_where(dotted, source, overrides)} must be a finite "
                              f"number, got {value!r}")
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif typing.get_origin(tp) is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(_choice_message(dotted, tp, value, source, overrides))
    else:
        return value
    raise ConfigError(_type_message(dotted, tp, value, source, overrides))


def _as_float(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads "1e-4" as a string
        except ValueError:
            return None
    return None


def _choice_message(dotted: str, tp: Any, value: Any, source: str, overrides) -> str:
    choices = [str(a) for a in typing.get_args(tp)]
    close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.0)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return (f"config key '{dotted}' in {_where(dotted, source, overrides)} must be one of {', '.join(choices)}, "
            f"got {value!r}{hint}")


def _type_message(dotted: str, tp: Any, value: Any, source: str, overrides) -> str:
    return (f"config key '{dotted}' in {_where(dotted, source, overrides)} expects {type_name(tp)}, "
            f"got {value!r} ({type(value).__name__})")


# ---- describing and writing ------------------------------------------------------------------
def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(tp))
        return f"{origin.__name__}[{args}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def all_keys(cls: type, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(cls)
    keys = []
    for f in fields(cls):
        if is_dataclass(hints[f.name]):
            keys.extend(all_keys(hints[f.name], prefix + f.name + "."))
        else:
            keys.append(prefix + f.name)
    return keys


@dataclass
class KeyDoc:
    key: str
    type: str
    default: Any
    help: str


def describe(cls: type, prefix: str = "") -> list[KeyDoc]:
    """Every leaf key of a config tree with its type, default and help text."""
    hints = typing.get_type_hints(cls)
    rows: list[KeyDoc] = []
    instance = cls() if _constructible(cls) else None
    for f in fields(cls):
        if is_dataclass(hints[f.name]):
            rows.extend(describe(hints[f.name], prefix + f.name + "."))
            continue
        default = getattr(instance, f.name) if instance is not None else _field_default(f)
        bounds = f.metadata.get("bounds")
        kind = type_name(hints[f.name]) + (f" ({bounds.describe()})" if bounds is not None else "")
        rows.append(KeyDoc(prefix + f.name, kind, default, f.metadata.get("help", "")))
    return rows


def _constructible(cls: type) -> bool:
    return all(f.default is not MISSING or f.default_factory is not MISSING for f in fields(cls) if f.init)


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return "(required)"


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False)


def markdown_reference(stages: dict[str, type]) -> str:
    lines = ["# Configuration reference", "",
             "Generated from the config dataclasses by `reasonrl config markdown`; do not edit by hand.",
             "Every key can be set in a YAML file or on the command line as `key.sub=value`.", ""]
    for name, cls in stages.items():
        lines += [f"## `{name}`", "", "| key | type | default | help |", "|---|---|---|---|"]
        for row in describe(cls):
            default = yaml.safe_dump(row.default, default_flow_style=True).strip().removesuffix("...").strip()
            cells = [f"`{row.key}`", row.type, f"`{default}`", row.help]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)
