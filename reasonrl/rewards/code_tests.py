"""The test layouts a code example may carry, normalised to one form, and rejected when a test
has no expectation (a test that compares against nothing would pass an empty program).

Accepted, per entry of `example["tests"]`:
    {"input": str, "output": str}              stdin / stdout
    {"stdin": str, "stdout": str}              the same, other names
    {"assert": str}                            top-level assert statements (reasonrl.rewards.asserts)
    {"inputs": [str, ...], "outputs": [str, ...]}  APPS style: one test per pair
Normalised: {"input": str, "output": str} or {"assert": str}.
"""

from __future__ import annotations

from reasonrl.rewards.asserts import plan_assert


class MalformedTest(ValueError):
    """A test that cannot be judged (no expectation, unknown layout, unsupported assertion)."""


def _text(value, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise MalformedTest(f"{what} must be a string, got {type(value).__name__}")
    return str(value)


def _io_test(test: dict, input_key: str, output_key: str) -> dict:
    if test.get(output_key) is None:
        raise MalformedTest(f"has {input_key!r} but no expected {output_key!r}")
    stdin = test.get(input_key)
    return {"input": "" if stdin is None else _text(stdin, input_key),
            "output": _text(test[output_key], output_key)}


def _apps_tests(test: dict) -> list[dict]:
    if "fn_name" in test:
        raise MalformedTest("call-based APPS tests ('fn_name') are not supported; "
                            "write them as {'assert': ...}")
    inputs, outputs = test.get("inputs"), test.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise MalformedTest("APPS-style tests need lists 'inputs' and 'outputs'")
    if len(inputs) != len(outputs) or not outputs:
        raise MalformedTest(f"APPS-style tests need as many outputs as inputs, at least one "
                            f"(got {len(inputs)} inputs, {len(outputs)} outputs)")
    return [{"input": _text(i, "inputs[]"), "output": _text(o, "outputs[]")}
            for i, o in zip(inputs, outputs)]


def normalise_test(test) -> list[dict]:
    """One entry of `tests` as a list of normalised tests; raises MalformedTest."""
    if not isinstance(test, dict):
        raise MalformedTest(f"a test must be an object, got {type(test).__name__}")
    if "assert" in test:
        source = test["assert"]
        if not isinstance(source, str) or not source.strip():
            raise MalformedTest("'assert' must be a non-empty string")
        plan_assert(source)  # raises ValueError when the verdict could not be judged safely
        return [{"assert": source}]
    if "inputs" in test or "outputs" in test:
        return _apps_tests(test)
    if "output" in test or "input" in test:
        return [_io_test(test, "input", "output")]
    if "stdout" in test or "stdin" in test:
        return [_io_test(test, "stdin", "stdout")]
    raise MalformedTest(f"unknown test layout with keys {sorted(test)}; expected "
                        "input/output, stdin/stdout, assert or inputs/outputs")


def normalise_tests(tests) -> list[dict]:
    """All of an example's tests, normalised; at least one. Raises MalformedTest naming the
    failing entry."""
    if isinstance(tests, dict):  # APPS rows carry one {"inputs", "outputs"} object
        tests = [tests]
    if not isinstance(tests, list) or not tests:
        raise MalformedTest("'tests' must be a non-empty list")
    out = []
    for index, test in enumerate(tests):
        try:
            out.extend(normalise_test(test))
        except ValueError as exc:
            raise MalformedTest(f"test {index}: {exc}") from None
    return out
