"""Config loading: YAML + dotted overrides, and one-line errors naming key, file and fix."""

from dataclasses import dataclass

import pytest

from reasonrl.config import ConfigError, describe, dump_yaml, load_config, opt, section


@dataclass
class Inner:
    group_size: int = opt(8, "samples per prompt")
    lr: float = opt(1e-4, "learning rate")
    mode: str = opt("grpo", "advantage mode")
    names: list[str] = opt(factory=list, help="names")
    path: str | None = opt(None, "optional path")


@dataclass
class Outer:
    rl: Inner = section(Inner, "rl")
    seed: int = opt(0, "seed")
    weights: dict[str, float] = opt(factory=lambda: {"accuracy": 1.0}, help="weights")


def write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_and_overrides_compose(tmp_path):
    path = write(tmp_path, "rl:\n  group_size: 4\nseed: 3\n")
    cfg = load_config(Outer, path, ["rl.lr=3e-4", "rl.names=[a, b]", "weights.format=0.5"])
    assert (cfg.rl.group_size, cfg.seed, cfg.rl.lr) == (4, 3, 3e-4)
    assert cfg.rl.names == ["a", "b"]
    # a mapping given in YAML or an override replaces the default mapping as a whole
    assert cfg.weights == {"format": 0.5}


def test_unknown_key_names_key_file_and_closest(tmp_path):
    path = write(tmp_path, "rl:\n  grup_size: 4\n")
    with pytest.raises(ConfigError) as err:
        load_config(Outer, path)
    msg = str(err.value)
    assert "'rl.grup_size'" in msg and str(path) in msg and "did you mean 'rl.group_size'" in msg
    assert "\n" not in msg


def test_unknown_override_names_the_override():
    with pytest.raises(ConfigError, match=r"unknown config key 'sed' in command-line override 'sed=1' \(did you mean 'seed'\?\)"):
        load_config(Outer, None, ["sed=1"])


def test_wrong_type_names_key_and_expected_type(tmp_path):
    path = write(tmp_path, "rl:\n  group_size: lots\n")
    with pytest.raises(ConfigError, match=r"config key 'rl.group_size' in .*cfg.yaml expects int, got 'lots'"):
        load_config(Outer, path)
    with pytest.raises(ConfigError, match="expects float"):
        load_config(Outer, None, ["rl.lr=fast"])
    with pytest.raises(ConfigError, match="expects int"):
        load_config(Outer, None, ["rl.group_size=2.5"])


def test_bad_yaml_reports_line(tmp_path):
    path = write(tmp_path, "rl:\n  group_size: [1, 2\nseed: 1\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml:\d+:\d+: invalid YAML"):
        load_config(Outer, path)


def test_section_given_a_scalar_fails(tmp_path):
    with pytest.raises(ConfigError, match="'rl' .* is a section"):
        load_config(Outer, write(tmp_path, "rl: 3\n"))


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(Outer, None, ["rl.group_size=16", "rl.path=/x"])
    again = load_config(Outer, write(tmp_path, dump_yaml(cfg), "resolved.yaml"))
    assert again == cfg


def test_describe_lists_every_leaf_with_help():
    rows = {r.key: r for r in describe(Outer)}
    assert set(rows) == {"rl.group_size", "rl.lr", "rl.mode", "rl.names", "rl.path", "seed", "weights"}
    assert rows["rl.group_size"].type == "int" and rows["rl.group_size"].default == 8
    assert rows["rl.path"].type == "str | null" and rows["rl.group_size"].help == "samples per prompt"
