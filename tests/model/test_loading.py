"""One loader for every command: policy, tokenizer and prompt card, or one clear error line."""

import pytest

from reasonrl.model import PolicyBundle, load_policy_bundle, resolve_model_source
from reasonrl.tasks.prompts import write_model_card

from tests.sampler.helpers import tiny_native_dir


@pytest.fixture(scope="module")
def native_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("native")
    tok = tiny_native_dir(path)
    write_model_card(path, "r1_short", tok, prefill="<think>")
    return path


def test_bundle_has_policy_tokenizer_and_recorded_format(native_dir):
    bundle = load_policy_bundle(str(native_dir))
    assert isinstance(bundle, PolicyBundle) and bundle.policy.is_native and not bundle.policy.training
    assert bundle.prompt_format == "r1_short" and bundle.card.prefill == "<think>"
    assert bundle.tokenizer.eos_token_id == bundle.policy.config.eos_token_id
    assert bundle.prompt_spec().render({"prompt": "q"}, bundle.tokenizer) == "User: q\nAssistant: <think>"
    assert bundle.prompt_spec("plain").render({"prompt": "q"}, bundle.tokenizer) == "q\n"


def _one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


def test_errors_are_one_line_naming_the_path(tmp_path, native_dir):
    import shutil

    with pytest.raises(FileNotFoundError) as e:
        load_policy_bundle(str(tmp_path / "nope"))
    assert _one_line(e) == f"model directory not found: {tmp_path / 'nope'}"
    with pytest.raises(FileNotFoundError) as e:
        resolve_model_source(str(tmp_path), "missing.gguf")
    assert str(tmp_path / "missing.gguf") in _one_line(e)
    with pytest.raises(ValueError) as e:
        load_policy_bundle(str(tmp_path))
    assert _one_line(e) == f"not a model directory (no config.json): {tmp_path}"
    broken = tmp_path / "broken"
    shutil.copytree(native_dir, broken)
    (broken / "config.json").write_text('{"model_type": "deepseek_v3",')
    with pytest.raises(ValueError) as e:
        load_policy_bundle(str(broken))
    assert _one_line(e).startswith(f"corrupt model config {broken / 'config.json'}: ")
    (broken / "config.json").write_text("[]")
    with pytest.raises(ValueError, match="corrupt model config"):
        load_policy_bundle(str(broken))
    (broken / "config.json").write_text((native_dir / "config.json").read_text())
    (broken / "reasonrl.json").write_text("{")
    with pytest.raises(ValueError) as e:
        load_policy_bundle(str(broken))
    assert str(broken / "reasonrl.json") in _one_line(e)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (broken / name).unlink()
    with pytest.raises(ValueError, match="no tokenizer"):
        load_policy_bundle(str(broken))


def test_smollm2_is_the_package_gguf(monkeypatch, tmp_path):
    import reasonrl.model.hf_policy as hf_policy

    monkeypatch.chdir(tmp_path)  # no ./smollm2 directory here
    monkeypatch.setattr(hf_policy, "smollm2_path", lambda: ("/pkg", hf_policy.SMOLLM2_GGUF))
    assert resolve_model_source("smollm2") == ("/pkg", hf_policy.SMOLLM2_GGUF)
