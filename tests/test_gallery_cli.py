"""The loss gallery (robustvae.gallery) and the command line (robustvae.cli)."""

from __future__ import annotations

import contextlib
import io
import math
import subprocess
import sys

import pytest

from robustvae.cli import main
from robustvae.gallery import DENSITY_ALPHAS, density_integral, density_integrals

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXPECTED = ("losses.png", "gradients.png", "distributions.png")


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """Run ``robustvae gallery`` once; return (out_dir, exit status, stdout)."""
    out = tmp_path_factory.mktemp("gallery")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = main(["gallery", "--out", out])
    return out, status, buffer.getvalue()


def test_gallery_writes_and_prints_pngs(gallery):
    out, status, stdout = gallery
    assert status == 0
    for name in EXPECTED:
        assert str(out / name) in stdout.splitlines()
    assert stdout.count("integral of p(x | 0, alpha=") == len(DENSITY_ALPHAS)


@pytest.mark.parametrize("name", EXPECTED)
def test_gallery_files_are_valid_pngs(gallery, name):
    path = gallery[0] / name
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000
    from PIL import Image  # matplotlib depends on Pillow

    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert width >= 1000 and height >= 500


@pytest.mark.parametrize("alpha", DENSITY_ALPHAS)
def test_density_integrates_to_one(alpha):
    assert density_integral(alpha) == pytest.approx(1.0, abs=1e-7)


def test_density_integrals_cover_plotted_alphas():
    integrals = density_integrals()
    assert set(integrals) == set(DENSITY_ALPHAS)
    assert all(abs(value - 1) < 1e-7 for value in integrals.values())


def test_cauchy_tail_explains_short_range_at_alpha_zero():
    # At α = 0 the density is a Cauchy of scale √2: over |x| ≤ L it misses (2/π)·atan(√2/L).
    L = 1e3
    tail = 2 / math.pi * math.atan(math.sqrt(2) / L)
    assert tail > 1e-4
    assert density_integral(0.0, x_max=L) + tail == pytest.approx(1.0, abs=1e-8)


def test_unknown_subcommand_exits_nonzero(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["nonsense"])
    assert excinfo.value.code != 0
    assert "invalid choice" in capsys.readouterr().err


def test_no_subcommand_exits_nonzero(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main([])
    assert excinfo.value.code != 0


@pytest.mark.parametrize("argv", [["--help"], ["gallery", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    assert "gallery" in out
    if argv[0] == "gallery":
        assert "--out" in out and "outputs/gallery" in out


def test_os_error_is_one_line_exit_2(tmp_path, capsys):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    assert main(["gallery", "--out", not_a_dir / "sub"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robustvae gallery: error:")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_a_missing_file_or_run_says_so_in_one_line(tmp_path, capsys):
    missing = tmp_path / "nofile.toml"
    assert main(["compare", missing]) == 2
    assert capsys.readouterr().err == (
        f"robustvae compare: error: {missing}: no such file or directory\n"
    )
    assert main(["sample", tmp_path / "nope"]) == 2
    assert capsys.readouterr().err.endswith(f"{tmp_path / 'nope'}: no such run directory\n")
    (tmp_path / "afile").write_text("")
    assert main(["sample", tmp_path / "afile"]) == 2
    assert capsys.readouterr().err.endswith(f"{tmp_path / 'afile'}: not a run directory\n")


def test_python_dash_m_help():
    result = subprocess.run(
        [sys.executable, "-m", "robustvae", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert "gallery" in result.stdout


@pytest.mark.parametrize(
    "command, wanted",
    [
        ("train", ["l2, l1, logcosh, general, adaptive", "vae | wae | vaegan", "mlp | conv"]),
        ("train", ["mnist-5k | fashion-mnist | mnist | celeba | folder", "(default: vae)"]),
        ("train --kind vaegan", ["--feature-loss-param", "(default: vaegan)"]),
        ("evaluate", ["(default: 1000)", "(default: 10000)", "skip FID"]),
        ("interpolate", ["--pairs PAIRS", "one row each (default: 8)", "ends included"]),
        ("sample", ["seeds the prior draws"]),
    ],
)
def test_help_lists_the_choices_and_defaults(command, wanted, capsys):
    with pytest.raises(SystemExit):
        main([*command.split(), "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for piece in wanted:
        assert piece in text, piece


def _help(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    "argv, shown, hidden",
    [
        (["train"], ["--arch", "(default: mnist-5k)", "(default: 100)"], ["--feature-loss"]),
        (["train", "--kind", "vaegan"], ["--feature-loss", "(default: vaegan)"], ["--arch"]),
        (["train", "--kind", "restore"], ["(default: photos)", "(default: 16)"], ["--arch"]),
        (
            ["restore", "train"],
            ["(default: photos)", "(default: 16)", "(default: 15)", "--crop"],
            ["--kind", "--image-size", "--arch", "--max-disparity", "(default: mnist-5k)"],
        ),
        (
            ["depth", "train"],
            ["(default: motorcycle)", "(default: 4)", "(at most 1024) (default: 80)"],
            ["--kind", "--image-size", "--arch", "(default: l2)", "(default: 100)"],
        ),
    ],
)
def test_help_shows_one_kinds_flags_and_defaults(argv, shown, hidden, capsys):
    text = _help(argv, capsys)
    for piece in shown:
        assert piece in text, piece
    for piece in hidden:
        assert piece not in text, piece


def test_a_kind_brings_its_own_run_defaults_beneath_what_is_set():
    from robustvae.training import RunConfig

    restore = RunConfig.make(kind="restore")
    assert (restore.dataset, restore.batch_size, restore.epochs) == ("photos", 16, 15)
    depth = RunConfig.make(kind="depth", batch_size=8)
    assert (depth.dataset, depth.batch_size, depth.model.max_disparity) == ("motorcycle", 8, 80)
    assert RunConfig.make(kind="vae").dataset == "mnist-5k"


def test_ctrl_c_says_where_the_run_stands_and_how_to_resume(tmp_path, monkeypatch, capsys):
    import robustvae.training

    run = tmp_path / "run"
    settings = ["--width", "0.1", "--epochs", "1", "--no-progress", "--no-tensorboard"]

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    real = robustvae.training.train
    monkeypatch.setattr(robustvae.training, "train", interrupt)
    assert main(["train", "--out", run, *settings]) == 130
    assert capsys.readouterr().err.endswith("before its first epoch ended: nothing to resume\n")
    monkeypatch.setattr(robustvae.training, "train", real)
    assert main(["train", "--out", run, *settings]) == 0
    capsys.readouterr()
    monkeypatch.setattr(robustvae.training, "train", interrupt)
    assert main(["train", "--out", run, "--resume", "--epochs", "2"]) == 130
    assert capsys.readouterr().err == (
        f"robustvae train: interrupted after epoch 1: resume with "
        f"`robustvae train --out {run} --resume`\n"
    )
