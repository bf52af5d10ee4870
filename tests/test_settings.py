"""Settings precedence (CLI > env > file > defaults), validation messages, workspace discovery."""

from __future__ import annotations

import pytest

from vibra.errors import ConfigError, WorkspaceError
from vibra.settings import SETTINGS, load_settings
from vibra.workspace import find_workspace, init_workspace


def _toml(tmp_path, text: str):
    path = tmp_path / "vibra.toml"
    path.write_text(text)
    return path


def test_defaults_without_file():
    s = load_settings(None, {})
    assert s.features.frame_length == 4096 and s.features.hop_length == 4096
    assert s.ingest.max_concurrent_files == 2


def test_precedence_cli_over_env_over_file(tmp_path):
    path = _toml(tmp_path, "[features]\nframe_length = 2048\nhop_length = 1024\n[ingest]\nmax_concurrent_files = 3\n")
    s = load_settings(path, {})
    assert (s.features.frame_length, s.features.hop_length, s.ingest.max_concurrent_files) == (2048, 1024, 3)
    env = {"VIBRA_FEATURES_FRAME_LENGTH": "1024", "VIBRA_INGEST_MAX_CONCURRENT_FILES": "5"}
    s = load_settings(path, env)
    assert (s.features.frame_length, s.ingest.max_concurrent_files) == (1024, 5)
    s = load_settings(path, env, {"features.frame_length": 512, "features.hop_length": 256,
                                  "ingest.max_concurrent_files": None})
    assert (s.features.frame_length, s.features.hop_length, s.ingest.max_concurrent_files) == (512, 256, 5)


@pytest.mark.parametrize("text, env, message", [
    ("[features]\nframe_length = 10\n", {}, "features.frame_length = 10: out of range; must be an integer in 64..1048576"),
    ("[features]\nframe_length = 'big'\n", {}, "features.frame_length = 'big': must be an integer"),
    ("", {"VIBRA_INGEST_MAX_CONCURRENT_FILES": "0"}, "VIBRA_INGEST_MAX_CONCURRENT_FILES: ingest.max_concurrent_files = '0'"),
    ("[ingest]\nmax_files = 3\n", {}, "[ingest] max_files: unknown setting"),
    ("[features]\nframe_length = 512\nhop_length = 1024\n", {}, "hop_length = 1024 is larger than frame_length = 512"),
    ("[nonsense]\n", {}, "unknown section [nonsense]"),
    ("[features]\nbands_hz = [[500, 100]]\n", {}, "each band needs 0 <= low_hz < high_hz"),
    ("[equipment.p1]\niso_group = 3\n", {}, "[equipment.p1] iso_group = 3: must be one of 1, 2"),
    ("[equipment.p1]\nsample_rate_hz = -5\n", {}, "sample_rate_hz = -5: out of range; must be a number in (0, 10000000]"),
    ("[equipment.p1]\nunits = 9.81\n", {}, "[equipment.p1] units = 9.81: must be text"),
    ("[equipment.p1]\nbearing = { n_elements = 2.5, ball_diameter_mm = 7, pitch_diameter_mm = 39 }\n", {},
     "[equipment.p1] bearing.n_elements = 2.5: must be an integer in 3..100"),
    ("[equipment.p1]\nfiles = [{ glob = \"N*\", decimate = 100 }]\n", {},
     "files glob 'N*': decimate = 100: out of range; must be an integer in 2..64"),
    ("[equipment.p1]\nbearing = { n_elements = 9, ball_diameter_mm = 40, pitch_diameter_mm = 39 }\n", {},
     "need 0 < ball_diameter_mm < pitch_diameter_mm"),
    ("[equipment.p1]\ncolour = 'red'\n", {}, "unknown key(s) ['colour']"),
    ("[equipment.'../etc']\nrpm = 100\n", {}, "equipment id must match"),
    ("[features\n", {}, "not valid TOML"),
])
def test_bad_values_name_the_key_and_range(tmp_path, text, env, message):
    path = _toml(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env)
    assert message in str(info.value)


def test_equipment_section(tmp_path):
    path = _toml(tmp_path, """
[equipment.pump-7]
sample_rate_hz = 12000
units = "g"
rpm = 1797
channels = ["time", "x", "-"]
bearing = { n_elements = 9, ball_diameter_mm = 7.94, pitch_diameter_mm = 39.04 }
iso_group = 2
iso_support = "rigid"
""")
    eq = load_settings(path, {}).equipment_for("pump-7")
    assert eq.sample_rate_hz == 12000.0 and eq.rpm == 1797.0 and eq.channels == ("time", "x", "-")
    assert eq.bearing.n_elements == 9 and eq.bearing.contact_angle_deg == 0.0
    assert load_settings(path, {}).equipment_for("other").sample_rate_hz is None


def test_bands_from_env(tmp_path):
    s = load_settings(None, {"VIBRA_FEATURES_BANDS_HZ": "0-100,100-2000"})
    assert s.features.bands_hz == ((0.0, 100.0), (100.0, 2000.0))


def test_every_setting_has_doc_and_env_name():
    for spec in SETTINGS:
        assert spec.doc and spec.env.startswith("VIBRA_")
        assert spec.low is None or spec.low <= spec.default


def test_workspace_discovery_order(tmp_path):
    a, _ = init_workspace(tmp_path / "a")
    b, _ = init_workspace(tmp_path / "b")
    deep = a.root / "x" / "y"
    deep.mkdir(parents=True)
    assert find_workspace(None, None, start=deep).root == a.root
    assert find_workspace(None, str(b.root), start=deep).root == b.root
    assert find_workspace(str(a.root), str(b.root), start=deep).root == a.root
    with pytest.raises(WorkspaceError, match="run `vibra init"):
        find_workspace(None, None, start=tmp_path)
    with pytest.raises(WorkspaceError, match="VIBRA_HOME"):
        find_workspace(None, str(tmp_path / "nope"), start=deep)


def test_init_never_overwrites(tmp_path):
    ws, created = init_workspace(tmp_path / "w")
    ws.config_path.write_text("[ingest]\nmax_concurrent_files = 7\n")
    _, created_again = init_workspace(tmp_path / "w")
    assert created and not created_again
    assert "7" in ws.config_path.read_text()
    assert load_settings(ws.config_path, {}).ingest.max_concurrent_files == 7


def test_reference_documents_every_setting_and_command():
    """The generated reference (docs/reference/settings.md and cli.md) holds every setting, environment
    variable and command; tests/test_docs.py checks that the committed pages are what the code generates."""
    from pathlib import Path

    import typer

    from vibra_cli.main import app

    reference = Path(__file__).resolve().parents[1] / "docs" / "reference"
    settings_md = (reference / "settings.md").read_text()
    cli_md = (reference / "cli.md").read_text()
    for spec in SETTINGS:
        assert f"`{spec.env}`" in settings_md, spec.env
        assert f"`[{spec.section}] {spec.key}`" in settings_md, spec.key
    for env in ("VIBRA_FEATURES_BANDS_HZ", "VIBRA_LOG_FORMAT", "VIBRA_LOG_LEVEL", "VIBRA_HOME"):
        assert f"`{env}`" in settings_md, env
    for command in ("init", "synth", "ingest", "status", "query recent", "features rebuild", "train", "detect",
                    "anomalies", "threshold set", "maintain gc", "forecast", "forecast show", "report", "demo",
                    "files", "sql", "readiness", "doctor"):
        assert f"## `vibra {command}`" in cli_md, command
    # and every command the code has, found by walking the Typer tree
    root = typer.main.get_command(app)

    def walk(group, prefix):
        ctx = group.context_class(group, info_name=prefix)
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            yield f"{prefix} {name}"
            if hasattr(cmd, "list_commands"):
                yield from walk(cmd, f"{prefix} {name}")

    for path in walk(root, "vibra"):
        assert f"## `{path}`" in cli_md, path


def test_checked_in_vibra_toml_is_the_generated_template():
    """The repository's vibra.toml is what `vibra init` writes, generated from the SETTINGS table
    (regenerate both with `python -m vibra_cli.docs`)."""
    from pathlib import Path

    from vibra.settings import toml_template

    root = Path(__file__).resolve().parents[1]
    assert (root / "vibra.toml").read_text() == toml_template(), "vibra.toml is stale: run `python -m vibra_cli.docs`"


def test_template_uncommented_gives_the_defaults_and_names_every_setting(tmp_path):
    """Every setting is in the template at its default: uncommenting each `# key = value` line (and
    nothing else) gives the same settings as no file at all."""
    import re

    from vibra.settings import toml_template

    text = toml_template()
    pattern = re.compile(r"^# ([a-z_0-9]+ = .*)$")
    lines, seen = [], set()
    section = None
    for line in text.splitlines():
        if line.startswith("# [equipment"):
            break
        if line.startswith("["):
            section = line.strip("[]")
        m = pattern.match(line)
        if m:
            seen.add((section, m.group(1).split(" = ")[0]))
        lines.append(m.group(1) if m else line)
    assert seen == {(s.section, s.key) for s in SETTINGS} | {("features", "bands_hz")}
    path = _toml(tmp_path, "\n".join(lines) + "\n")
    assert load_settings(path, {}).as_dict() == load_settings(None, {}).as_dict()


def test_section_classes_follow_the_spec_table():
    """The settings dataclasses are generated from SETTINGS: same fields, same defaults; and they pickle
    (the flows hand settings to Dask workers)."""
    import pickle
    from dataclasses import fields

    from vibra.settings import SECTIONS, Settings

    defaults = Settings()
    for name, cls in SECTIONS.items():
        specs = {s.key: s.default for s in SETTINGS if s.section == name}
        got = {f.name: getattr(getattr(defaults, name), f.name) for f in fields(cls) if f.name != "bands_hz"}
        assert got == specs, name
    assert pickle.loads(pickle.dumps(defaults)) == defaults
