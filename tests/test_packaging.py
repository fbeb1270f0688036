"""What a user installing the package expects: a licence file in the repository and the wheel,
type information, and dependency ranges (the exact pins live in constraints.txt)."""

import tomllib
from pathlib import Path

import robustvae

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_licence_named_in_pyproject_is_shipped():
    assert PROJECT["project"]["license"] == "MIT"
    assert PROJECT["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_package_says_it_is_typed():
    assert (Path(robustvae.__file__).parent / "py.typed").exists()
    assert "py.typed" in PROJECT["tool"]["setuptools"]["package-data"]["robustvae"]


def test_dependencies_are_ranges_and_the_tested_versions_are_constraints():
    for requirement in PROJECT["project"]["dependencies"]:
        assert "==" not in requirement, f"{requirement}: an exact pin clashes with users' envs"
    pins = (ROOT / "constraints.txt").read_text().splitlines()
    assert "torch==2.13.0" in pins


def test_the_wheel_holds_the_licence_the_type_marker_and_the_shipped_weights(tmp_path):
    import subprocess
    import sys
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("robustvae-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "robustvae/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    weights = ROOT / "src" / "robustvae" / "restoration" / "weights"
    for path in [*weights.glob("*.safetensors"), weights / "manifest.json"]:
        assert f"robustvae/restoration/weights/{path.name}" in names, path.name
    assert "robustvae/metrics/classifiers/manifest.json" in names
