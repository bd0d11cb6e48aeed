"""Assert tests judged outside the program under test.

An `{"assert": "assert f(2) == 4"}` test used to be appended to the program and judged by its
exit status, which the program controls (sys.exit(0) first, os._exit, atexit, an object whose
`__eq__` is always True, a patched AssertionError ...). Here the assertion is split:

  * probes: the sub-expressions that need the program (`f(2)`), evaluated inside the sandbox
    after the program's code; each value must be a plain value (None, bool, int, float, str,
    list, tuple, dict, set of plain values) and travels back as tagged JSON;
  * checks: the rest of each assertion (`_p0 == 4`), with its literals, comparisons and a few
    pure builtins, evaluated here, in the reward worker, on the decoded values.

The program never sees the checks or their literals, so it can only pass by returning the right
values. Exiting early, hooks and exotic objects yield no values or values that are rejected.
"""

from __future__ import annotations

import ast
import builtins
import json
import math

SAFE_FUNCTIONS = {name: getattr(builtins, name) for name in (
                      "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "float",
                      "frozenset", "int", "isinstance", "len", "list", "max", "min", "range",
                      "reversed", "round", "set", "sorted", "str", "sum", "tuple", "type", "zip")}
MATH_NAMES = ("isclose", "sqrt", "floor", "ceil", "fabs", "inf", "nan", "pi", "e", "isnan",
              "isinf", "isfinite", "log", "log2", "log10", "exp", "gcd", "comb", "factorial",
              "prod", "trunc")
# node types whose value is computed here from already-checked children
TRUSTED_NODES = (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.IfExp, ast.List,
                 ast.Tuple, ast.Set, ast.Dict, ast.Subscript, ast.Slice, ast.Starred)
MAX_DEPTH = 100


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


class _Splitter(ast.NodeTransformer):
    """Rewrites an assertion's test: program-dependent sub-expressions become `_pN` names."""

    def __init__(self, trusted_names: set[str], probes: list[str]):
        self.trusted_names = trusted_names
        self.probes = probes

    def probe(self, node: ast.AST) -> ast.Name:
        if isinstance(node, ast.GeneratorExp):  # same elements, but a plain value
            node = ast.ListComp(elt=node.elt, generators=node.generators)
        if isinstance(node, (ast.Lambda, ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom)):
            raise ValueError(f"cannot judge {ast.unparse(node)!r} outside the program")
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Compare, ast.BoolOp)) or (
                    isinstance(inner, ast.UnaryOp) and isinstance(inner.op, ast.Not)):
                raise ValueError(f"the comparison in {ast.unparse(node)!r} would run inside the "
                                 "program; compare the program's values at the top level")
        self.probes.append(ast.unparse(node))
        return ast.Name(id=f"_p{len(self.probes) - 1}", ctx=ast.Load())

    def _trusted_callee(self, func: ast.AST) -> bool:
        if isinstance(func, ast.Name):
            return func.id in self.trusted_names
        return (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                and func.value.id == "math" and func.attr in MATH_NAMES)

    def visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, (ast.Constant, ast.expr_context, ast.operator, ast.cmpop,
                             ast.unaryop, ast.boolop)):
            return node
        if isinstance(node, ast.Name):
            return node if node.id in self.trusted_names else self.probe(node)
        if isinstance(node, ast.Attribute):
            return node if self._trusted_callee(node) else self.probe(node)
        if isinstance(node, ast.Call):
            if not self._trusted_callee(node.func):
                return self.probe(node)
            node.args = [self.visit(arg) for arg in node.args]
            node.keywords = [ast.keyword(arg=k.arg, value=self.visit(k.value)) for k in node.keywords]
            return node
        if isinstance(node, TRUSTED_NODES) or isinstance(node, ast.keyword):
            return self.generic_visit(node)
        return self.probe(node)


def _bound_names(statement: ast.stmt) -> set[str]:
    names = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(statement.name)
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        names |= {(a.asname or a.name).split(".")[0] for a in statement.names}
    return names


def _literal_assignment(statement: ast.stmt) -> tuple[str, object] | None:
    if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name) and _is_literal(statement.value)):
        return statement.targets[0].id, ast.literal_eval(statement.value)
    return None


def plan_assert(source: str) -> dict:
    """Split an assert test into program-side setup and probes and worker-side checks.

    Returns {"setup": str, "probes": [str], "checks": [str], "consts": {name: value},
    "math_aliases": {name: math_name}}. Raises ValueError for a test that cannot be judged
    outside the program: no top-level assert, an assert nested in a function or loop, or a
    comparison that could only run inside the program."""
    try:
        module = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"assert test does not parse: {exc.msg} (line {exc.lineno})") from None
    consts, math_aliases, setup, checks, probes = {}, {}, [], [], []
    for statement in module.body:
        if isinstance(statement, ast.Assert):
            trusted = set(SAFE_FUNCTIONS) | set(consts) | set(math_aliases)
            test = _Splitter(trusted, probes).visit(statement.test)
            checks.append(ast.unparse(test))
            continue
        if any(isinstance(n, ast.Assert) for n in ast.walk(statement)):
            raise ValueError("assert statements must be at the top level of the test "
                             "(an assert inside a function or block would run in the program)")
        literal = _literal_assignment(statement)
        for name in _bound_names(statement):
            consts.pop(name, None)
            math_aliases.pop(name, None)
        if literal is not None:
            consts[literal[0]] = literal[1]
        if isinstance(statement, ast.ImportFrom) and statement.module == "math":
            math_aliases.update({a.asname or a.name: a.name for a in statement.names
                                 if a.name in MATH_NAMES})
        setup.append(statement)
    if not checks:
        raise ValueError("assert test has no assert statement")
    if not probes:
        raise ValueError("assert test does not involve the program (nothing to evaluate in it)")
    return {"setup": _program_setup(setup, probes), "probes": probes, "checks": checks,
            "consts": consts, "math_aliases": math_aliases}


def _program_setup(statements: list[ast.stmt], probes: list[str]) -> str:
    """The setup statements the program side runs: all but literal assignments no probe
    reads (those may hold expected values; the checks read them here)."""
    used = {n.id for p in probes for n in ast.walk(ast.parse(p, mode="eval")) if isinstance(n, ast.Name)}
    kept = [s for s in statements
            if (_literal_assignment(s) is None) or _literal_assignment(s)[0] in used]
    return ast.unparse(ast.Module(body=kept, type_ignores=[]))


# Runs in the sandbox as the program's entry point: the program's file, the test's setup, then
# each probe; values go out on fd 3 as tagged JSON. Nothing here needs to be tamper-proof: the
# program can write anything to fd 3, but it never sees what the values are checked against.
RUNNER = '''import json, os
PROBES = {probes!r}
SETUP = {setup!r}
TAGS = {{list: "l", tuple: "t", set: "S", frozenset: "S"}}


def encode(value, depth=0):
    kind = type(value)
    if depth > {max_depth}:
        raise ValueError("value nested too deeply")
    if value is None:
        return ["n"]
    if kind is bool:
        return ["b", value]
    if kind is int:
        return ["i", hex(value)]
    if kind is float:
        return ["f", repr(value)]
    if kind is str:
        return ["s", value]
    if kind in TAGS:
        return [TAGS[kind], [encode(v, depth + 1) for v in value]]
    if kind is dict:
        return ["d", [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]]
    raise TypeError("not a plain value: " + kind.__name__)


namespace = {{"__name__": "__main__", "__builtins__": __builtins__}}
with open("main.py") as fh:
    exec(compile(fh.read(), "main.py", "exec"), namespace)
exec(compile(SETUP, "test", "exec"), namespace)
values = []
for probe in PROBES:
    try:
        values.append(["ok", encode(eval(probe, namespace))])
    except BaseException as exc:
        values.append(["raised", (type(exc).__name__ + ": " + str(exc))[:300]])
os.write(3, json.dumps(values).encode())
'''


def runner_source(plan: dict) -> str:
    return RUNNER.format(probes=plan["probes"], setup=plan["setup"], max_depth=MAX_DEPTH)


def decode(node, depth: int = 0):
    """A tagged JSON value back as a plain value; anything else raises ValueError."""
    if depth > MAX_DEPTH or not isinstance(node, list) or not node or not isinstance(node[0], str):
        raise ValueError("malformed value")
    tag, rest = node[0], node[1:]
    if tag == "n" and not rest:
        return None
    if len(rest) != 1:
        raise ValueError("malformed value")
    value = rest[0]
    scalars = {"b": (bool, bool), "i": (str, lambda s: int(s, 16)), "f": (str, float), "s": (str, str)}
    if tag in scalars:
        kind, convert = scalars[tag]
        if type(value) is not kind:
            raise ValueError("malformed value")
        return convert(value)
    if tag in ("l", "t", "S") and isinstance(value, list):
        items = [decode(v, depth + 1) for v in value]
        return {"l": list, "t": tuple, "S": set}[tag](items)
    if tag == "d" and isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 for p in value):
        return {decode(k, depth + 1): decode(v, depth + 1) for k, v in value}
    raise ValueError("malformed value")


def judge(plan: dict, report: str) -> tuple[bool, str | None]:
    """(passed, why not): the checks evaluated on the values the program reported. `why`
    starts with "error:" when the program raised in a probe or reported nothing usable."""
    if not report:
        return False, "error: no values reported (the program exited before its test ran)"
    try:
        entries = json.loads(report)
        if not isinstance(entries, list) or len(entries) != len(plan["probes"]):
            raise ValueError("wrong number of values")
        values = {}
        for index, (status, payload) in enumerate(entries):
            if status == "raised":
                return False, f"error: {str(payload)[:300]}"
            if status != "ok":
                raise ValueError(f"unknown status {status!r}")
            values[f"_p{index}"] = decode(payload)
    except (ValueError, TypeError, RecursionError) as exc:
        return False, f"error: unreadable test report ({exc})"
    namespace = {**SAFE_FUNCTIONS, "math": math, **plan["consts"], **values,
                 **{alias: getattr(math, name) for alias, name in plan["math_aliases"].items()}}
    for check in plan["checks"]:
        try:
            if not eval(check, {"__builtins__": {}}, dict(namespace)):
                return False, "assertion failed"
        except Exception:  # e.g. comparing a wrong-typed answer: a wrong answer, not a crash
            return False, "assertion failed"
    return True, None
