"""robustvae.data: CelebA (folder and zip, tiny fakes made here) and image folders."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustvae.data import DataWarning, load_dataset
from robustvae.data.celeba import CELEBA_BOX
from robustvae.data.folder import folder_sources, folder_split
from robustvae.data.images import ImageSource, SourceReader


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Loads without an explicit cache_dir write under tmp_path, never ~/.cache."""
    monkeypatch.setenv("ROBUSTVAE_CACHE", str(tmp_path / "default-cache"))


# Official numbering: 1–162770 train, 162771–182637 valid, 182638–202599 test.
CELEBA_NAMES = {
    "000001.jpg": "train",
    "162770.jpg": "train",
    "162771.jpg": "valid",
    "182637.jpg": "valid",
    "182638.jpg": "test",
    "202599.jpg": "test",
}


def _face(seed: int) -> Image.Image:
    """A smooth 178×218 RGB picture (JPEG-friendly), different per seed."""
    y, x = np.mgrid[0:218, 0:178]
    rgb = np.stack([(x * (seed + 1)) % 256, (y * 2 + seed * 40) % 256, (x + y + seed * 17) % 256])
    return Image.fromarray(rgb.transpose(1, 2, 0).astype(np.uint8), "RGB")


@pytest.fixture
def celeba(tmp_path) -> Path:
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    for i, name in enumerate(CELEBA_NAMES):
        _face(i).save(folder / name, quality=95)
    return tmp_path / "celeba"


def _zip_of(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f"img_align_celeba/{f.name}")
    return archive


# ----------------------------------------------------------------------------- CelebA


def test_celeba_folder_splits_shape_range(celeba, tmp_path):
    sizes = {}
    for split in ("train", "valid", "test", "all"):
        ds = load_dataset("celeba", split, root=celeba, cache_dir=tmp_path / "c")
        assert ds.images.shape[1:] == (3, 64, 64) and ds.labels is None
        assert ds.images.dtype == torch.float32 and 0 <= ds.images.min() <= ds.images.max() <= 1
        sizes[split] = len(ds)
    assert sizes == {"train": 2, "valid": 2, "test": 2, "all": 6}
    small = load_dataset("celeba", "all", root=celeba / "img_align_celeba", image_size=32)
    assert small.images.shape == (6, 3, 32, 32)


def test_celeba_zip_equals_folder(celeba, tmp_path):
    archive = _zip_of(celeba / "img_align_celeba", tmp_path / "img_align_celeba.zip")
    from_folder = load_dataset("celeba", "all", root=celeba, cache_dir=tmp_path / "c1")
    from_zip = load_dataset("celeba", "all", root=archive, cache_dir=tmp_path / "c2")
    assert torch.equal(from_folder.images, from_zip.images)
    # A folder holding only the zip works too.
    only_zip = tmp_path / "only-zip"
    only_zip.mkdir()
    archive.rename(only_zip / "img_align_celeba.zip")
    test = load_dataset("celeba", "test", root=only_zip, cache_dir=tmp_path / "c3")
    assert torch.equal(test.images, from_folder.images[4:])


def test_celeba_partition_file_wins(celeba, tmp_path):
    lines = [f"{name} {2 - i % 3}" for i, name in enumerate(CELEBA_NAMES)]
    (celeba / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    all_images = load_dataset("celeba", "all", root=celeba, cache_dir=tmp_path / "c").images
    test = load_dataset("celeba", "test", root=celeba, cache_dir=tmp_path / "c")
    assert torch.equal(test.images, all_images[[0, 3]])  # lines 0 and 3 say 2
    # Kaggle's CSV beside a zip, with one image missing from it.
    archive = _zip_of(celeba / "img_align_celeba", tmp_path / "img_align_celeba.zip")
    csv = ["image_id,partition"] + [f"{n},{0 if i < 3 else 1}" for i, n in enumerate(CELEBA_NAMES)]
    (tmp_path / "list_eval_partition.csv").write_text("\n".join(csv[:-1]) + "\n")
    with pytest.warns(DataWarning, match=r"does not list 1 image\(s\) \(e\.g\. 202599\.jpg\)"):
        valid = load_dataset("celeba", "valid", root=archive, cache_dir=tmp_path / "c")
    assert torch.equal(valid.images, all_images[3:5])


def test_celeba_malformed_partition_file(celeba):
    (celeba / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg train\n")
    with pytest.raises(
        ValueError, match=r"list_eval_partition\.txt:2: expected '<image> <0\|1\|2>'"
    ):
        load_dataset("celeba", root=celeba)


def test_celeba_center_crop_is_the_documented_box(tmp_path):
    """White exactly inside the 140×140 box, black outside: the result is all white."""
    folder = tmp_path / "img_align_celeba"
    folder.mkdir()
    a = np.zeros((218, 178, 3), np.uint8)
    left, top, right, bottom = CELEBA_BOX
    assert (right - left, bottom - top) == (140, 140)
    assert (left + right, top + bottom) == (178, 218)  # centred
    a[top:bottom, left:right] = 255
    Image.fromarray(a).save(folder / "000001.png")
    b = np.zeros_like(a)
    b[top + 2 : bottom - 2, left + 2 : right - 2] = 255  # 2 px smaller: dark edges
    Image.fromarray(b).save(folder / "000002.png")
    ds = load_dataset("celeba", root=folder, cache_dir=tmp_path / "c")
    assert torch.equal(ds.images[0], torch.ones(3, 64, 64))
    assert ds.images[1, :, 0, :].max() < 1 and ds.images[1, :, 32, 32].min() == 1


def test_celeba_bad_images(celeba, tmp_path):
    folder = celeba / "img_align_celeba"
    Image.new("RGB", (200, 200)).save(folder / "000002.jpg")
    with pytest.raises(ValueError, match=r"000002\.jpg: image is 200×200, expected 178×218"):
        load_dataset("celeba", root=celeba, cache_dir=tmp_path / "c")
    (folder / "000002.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(ValueError, match=r"000002\.jpg: unreadable image"):
        load_dataset("celeba", root=celeba, cache_dir=tmp_path / "c")
    good = (folder / "000001.jpg").read_bytes()
    (folder / "000002.jpg").write_bytes(good[: len(good) // 3])  # truncated JPEG
    with pytest.raises(ValueError, match=r"000002\.jpg: unreadable image"):
        load_dataset("celeba", root=celeba, cache_dir=tmp_path / "c")


def test_celeba_missing_and_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset("celeba", root=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no CelebA images"):
        load_dataset("celeba", root=tmp_path / "empty")
    (tmp_path / "bad.zip").write_bytes(b"PK not a zip")
    with pytest.raises(ValueError, match=r"bad\.zip: not a readable zip"):
        load_dataset("celeba", root=tmp_path / "bad.zip")


# ----------------------------------------------------------------------------- folder


def _gray(path: Path, size=(20, 30), value=128, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def test_folder_greyscale_recursive_resized(tmp_path):
    _gray(tmp_path / "imgs" / "a.png", (20, 30), 128)
    _gray(tmp_path / "imgs" / "sub" / "b.PNG", (64, 48), 128)
    _gray(tmp_path / "imgs" / "sub" / "deeper" / "c.jpg", (33, 33), 128)
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    _gray(tmp_path / "imgs" / ".hidden" / "x.png")
    ds = load_dataset("folder", "all", root=tmp_path / "imgs", image_size=16, cache_dir=tmp_path)
    assert ds.images.shape == (3, 1, 16, 16) and ds.labels is None
    assert torch.allclose(ds.images, torch.full_like(ds.images, 128 / 255), atol=1.5 / 255)
    assert [s.name for s in folder_sources(tmp_path / "imgs")] == [
        "a.png",
        "sub/b.PNG",
        "sub/deeper/c.jpg",
    ]


def test_folder_colour_if_any_image_is_colour(tmp_path):
    _gray(tmp_path / "a.png", value=200)
    Image.new("RGB", (20, 30), (255, 0, 0)).save(tmp_path / "b.png")
    Image.new("RGBA", (20, 30), (0, 0, 255, 10)).save(tmp_path / "c.png")
    ds = load_dataset("folder", "all", root=tmp_path, cache_dir=tmp_path / "c")
    assert ds.images.shape == (3, 3, 30, 20)  # native size: all images agree
    assert torch.equal(ds.images[0], torch.full((3, 30, 20), 200 / 255))
    assert ds.images[1, :, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert ds.images[2, :, 0, 0].tolist() == [0.0, 0.0, 1.0]  # alpha dropped


def test_folder_16_bit_and_la_images(tmp_path):
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "a.png")
    Image.fromarray(np.full((8, 8), 257 * 100, np.uint16)).save(tmp_path / "b.png")
    Image.new("LA", (8, 8), (51, 100)).save(tmp_path / "c.png")
    ds = load_dataset("folder", "all", root=tmp_path, cache_dir=tmp_path / "c")
    assert ds.channels == 1
    for i, value in enumerate((255, 100, 51)):
        assert torch.equal(ds.images[i], torch.full((1, 8, 8), value / 255))


def test_folder_splits_are_disjoint_deterministic_and_complete(tmp_path):
    for i in range(60):
        _gray(tmp_path / "imgs" / f"{i:03d}.png", (4, 4), i)
    root = tmp_path / "imgs"
    values = {}
    for split in ("train", "test", "all"):
        ds = load_dataset("folder", split, root=root, cache_dir=tmp_path / "c")
        values[split] = sorted(round(v * 255) for v in ds.images[:, 0, 0, 0].tolist())
    assert sorted(values["train"] + values["test"]) == values["all"] == list(range(60))
    assert 1 <= len(values["test"]) <= 15
    sources = folder_sources(root)
    assert [s.name for s in folder_split(sources, "test")] == [
        f"{v:03d}.png" for v in values["test"]
    ]


def test_folder_zip(tmp_path):
    for i in range(3):
        _gray(tmp_path / "imgs" / f"{i}.png", (5, 5), 10 * i)
    with zipfile.ZipFile(tmp_path / "imgs.zip", "w") as z:
        for f in sorted((tmp_path / "imgs").iterdir()):
            z.write(f, f"pics/{f.name}")
    a = load_dataset("folder", "all", root=tmp_path / "imgs.zip", cache_dir=tmp_path / "c")
    b = load_dataset("folder", "all", root=tmp_path / "imgs", cache_dir=tmp_path / "c")
    assert torch.equal(a.images, b.images)


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "empty")) + ": no images found"):
        load_dataset("folder", root=tmp_path / "empty")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="no images found"):
        load_dataset("folder", root=tmp_path / "text")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset("folder", root=tmp_path / "missing")
    with pytest.raises(ValueError, match=r"a\.txt: expected a folder of images or a \.zip"):
        load_dataset("folder", root=tmp_path / "text" / "a.txt")

    _gray(tmp_path / "mixed" / "a.png", (10, 10))
    _gray(tmp_path / "mixed" / "b.png", (12, 10))
    with pytest.raises(
        ValueError, match=r"b\.png: image is 12×10 but .*a\.png is 10×10.*image_size \(--image-size"
    ):
        load_dataset("folder", "all", root=tmp_path / "mixed", cache_dir=tmp_path / "c")
    assert len(load_dataset("folder", "all", root=tmp_path / "mixed", image_size=8)) == 2

    _gray(tmp_path / "broken" / "a.png")
    (tmp_path / "broken" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match=r"b\.png: unreadable image"):
        load_dataset("folder", "all", root=tmp_path / "broken", image_size=8)

    _gray(tmp_path / "one" / "a.png")
    empty_split = (
        "test" if folder_split(folder_sources(tmp_path / "one"), "test") == [] else "train"
    )
    with pytest.raises(ValueError, match=f"split '{empty_split}' is empty.*--test-fraction 0"):
        load_dataset("folder", empty_split, root=tmp_path / "one", image_size=8)


def _png_claiming(path, width: int, height: int) -> None:
    """A real 1×1 PNG whose header claims ``width``×``height`` (CRC fixed up)."""
    import io
    import struct
    import zlib

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (1, 1), 0).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    start = data.index(b"IHDR")
    data[start + 4 : start + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[start : start + 17])) & 0xFFFFFFFF
    data[start + 17 : start + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))


def test_a_decompression_bomb_is_one_line_naming_the_file_and_the_limit(tmp_path):
    from robustvae.data.folder import load_folder_images
    from robustvae.data.image_file import read_image

    bomb = tmp_path / "bomb.png"
    _png_claiming(bomb, 30000, 30000)
    for load in (
        lambda: read_image(bomb),
        lambda: load_folder_images("all", tmp_path, 8, tmp_path / "cache"),
    ):
        with pytest.raises(ValueError) as caught:
            load()
        message = str(caught.value)
        assert "bomb.png" in message and "PIL.Image.MAX_IMAGE_PIXELS" in message
        assert len(message.splitlines()) == 1


def test_symlink_loops_and_twice_linked_files_list_each_image_once(tmp_path):
    from PIL import Image

    from robustvae.data.images import list_folder

    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png"):
        Image.new("L", (4, 4), 7).save(root / name)
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    (root / "again.png").symlink_to(root / "a.png")
    names = [s.name for s in list_folder(root)]
    assert names == ["a.png", "sub/b.png"]  # "again.png" sorts after "a.png": a is kept


_ZEROS_MB = 300


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory) -> Path:
    """A ~300 KB zip whose one member, ``pics/big.png``, is 300 MB of zeros (written in chunks,
    so building it takes no memory)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("pics/big.png", "w") as f:
        for _ in range(_ZEROS_MB):
            f.write(bytes(2**20))
    assert path.stat().st_size < 2**20
    return path


def _understating(bomb: Path, to: Path, declared: int) -> Path:
    """A copy of ``bomb`` whose central directory claims the member is ``declared`` bytes."""
    data = bytearray(bomb.read_bytes())
    entry = data.rindex(b"PK\x01\x02")  # the one central directory entry
    data[entry + 24 : entry + 28] = declared.to_bytes(4, "little")  # uncompressed size
    to.write_bytes(bytes(data))
    with zipfile.ZipFile(to) as z:
        assert z.getinfo("pics/big.png").file_size == declared
    return to


_LOAD_AND_MEASURE = """
import resource, sys
from pathlib import Path
from robustvae.data.folder import load_folder_images
from robustvae.restoration.data import load_folder

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for load in (load_folder_images, lambda split, root, *_: load_folder(root, split)):
    try:
        load("all", Path(sys.argv[1]), 8, Path(sys.argv[2]))
        sys.exit("loaded")
    except ValueError as error:
        print(error)
growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(growth * (1 if sys.platform == "darwin" else 1024))
"""


def _load_in_subprocess(archive: Path, cache: Path) -> tuple[list[str], int]:
    """Both folder loaders' error lines for ``archive``, and the peak memory growth in bytes
    (a fresh process, so earlier tests' peaks cannot hide it)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_MEASURE, str(archive), str(cache)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    *errors, growth = done.stdout.splitlines()
    return errors, int(growth)


def test_an_oversized_zip_member_is_refused_by_its_declared_size_without_reading_it(
    zip_bomb, tmp_path
):
    from robustvae.data import images

    errors, growth = _load_in_subprocess(zip_bomb, tmp_path / "cache")
    assert (
        errors
        == [
            f"{zip_bomb}:pics/big.png: zip member is {_ZEROS_MB * 2**20} bytes uncompressed, above "
            f"the limit of {images.MAX_MEMBER_BYTES} bytes for one image; take it out of the "
            "archive, or raise robustvae.data.images.MAX_MEMBER_BYTES"
        ]
        * 2
    )
    assert growth < 100 * 2**20


def test_a_zip_member_understating_its_size_is_read_no_further_than_declared(zip_bomb, tmp_path):
    liar = _understating(zip_bomb, tmp_path / "liar.zip", 1000)
    errors, growth = _load_in_subprocess(liar, tmp_path / "cache")
    assert len(errors) == 2
    for error in errors:
        assert error.startswith(f"{liar}:pics/big.png: unreadable zip member (BadZipFile: Bad CRC")
    assert growth < 100 * 2**20


def test_the_zip_member_limit_is_settable(tmp_path, monkeypatch):
    from robustvae.data import images
    from robustvae.data.folder import load_folder_images
    from robustvae.restoration.data import load_folder

    _gray(tmp_path / "imgs" / "a.png", (6, 6), 9)
    archive = tmp_path / "imgs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(tmp_path / "imgs" / "a.png", "a.png")
        size = z.getinfo("a.png").file_size
    assert load_folder_images("all", archive, None, tmp_path / "c").shape == (1, 1, 6, 6)
    assert load_folder(archive, "all")[0].image.shape == (1, 6, 6)
    monkeypatch.setattr(images, "MAX_MEMBER_BYTES", size - 1)
    for load in (
        lambda: load_folder_images("all", archive, None, tmp_path / "c2"),
        lambda: load_folder(archive, "all"),
    ):
        with pytest.raises(ValueError, match=rf"imgs\.zip:a\.png: zip member is {size} bytes"):
            load()


def test_a_zip_member_that_is_not_an_image_is_one_line_naming_it(tmp_path, monkeypatch):
    from robustvae.data.folder import load_folder_images
    from robustvae.data.image_file import read_image
    from robustvae.restoration.data import load_folder

    unidentified = (
        "unreadable image (not an image Pillow can identify: an unknown format or a damaged header)"
    )
    _gray(tmp_path / "a.png", (6, 6), 9)
    archive = tmp_path / "imgs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(tmp_path / "a.png", "a.png")
        z.writestr("notes.png", "not a picture")
    for load in (
        lambda: load_folder_images("all", archive, None, tmp_path / "c"),
        lambda: load_folder(archive, "all"),
    ):
        with pytest.raises(ValueError) as caught:
            load()
        assert str(caught.value) == f"{archive}:notes.png: " + unidentified
    with pytest.raises(ValueError) as caught:  # what the restorer reads each member with
        read_image(io.BytesIO(b"not a picture"), "imgs.zip:notes.png")
    assert str(caught.value) == "imgs.zip:notes.png: " + unidentified


def test_the_restorer_opens_a_zip_once_not_once_per_member(tmp_path, monkeypatch):
    from robustvae.restoration.data import load_folder

    archive = tmp_path / "imgs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(5):
            _gray(tmp_path / f"{i}.png", (6, 6), 9 * i)
            z.write(tmp_path / f"{i}.png", f"{i}.png")
    opened = []
    real = zipfile.ZipFile.__init__

    def counting(self, file, *args, **kwargs):
        opened.append(file)
        real(self, file, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "__init__", counting)
    assert len(load_folder(archive, "all")) == 5
    assert len(opened) <= 3  # listing, the channel probe, and reading

    reader = SourceReader()
    source = ImageSource("0.png", archive, "0.png")
    first = reader.file(source).getvalue()
    reader.close()
    assert reader.file(source).getvalue() == first  # used again after close: reopens
    reader.close()
