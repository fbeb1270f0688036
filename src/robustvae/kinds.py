"""The registry of model kinds. The trainer, the CLI, experiment grids and reports read it, so
a kind added here appears everywhere at once.

A kind is one module plus one ``Kind`` entry in ``KINDS``:

- ``config``: a frozen, flat dataclass of its settings, each field with a default and a
  ``help`` text in its metadata (the CLI's ``--help``), with ``to_dict``/``from_dict``;
- ``build(config, shape)``: the ``robustvae.task.Task`` it trains, for data items of ``shape``;
- ``check(config, shape)``: raise ``ValueError`` if the settings cannot work for data of that
  shape (run when a config is made, when the dataset's shape is known without loading it);
- ``run_defaults``: the run settings (dataset, batch size, epochs) it defaults to, its
  preset's, in place of the run's own defaults (which are the autoencoders'), and
  ``run_settings_unused``, the run settings it refuses (left out of its ``--help``);
- ``load_data(run_config)``: its (train, test) data, objects with ``tensors`` (a dict of
  equal-length tensors), ``item_shape`` and ``len()``;

and one ``Evaluator`` (``robustvae.evaluation.evaluator``: how its runs are scored, drawn and
shown) in ``robustvae.evaluation.evaluators``. The evaluation side sits above this registry and
the trainer: it imports them, never the other way round (``tests/test_layout.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "Kind", "get_kind"]


@dataclass(frozen=True)
class Kind:
    name: str
    summary: str
    config: type
    build: Callable[[Any, tuple], Any]
    check: Callable[[Any, tuple], None]
    load_data: Callable[[Any], tuple]
    #: Run settings (dataset, batch_size, epochs) this kind defaults to instead of the run's
    #: own defaults, those of its preset: beneath everything a user or a file sets.
    run_defaults: dict[str, Any] = field(default_factory=dict)
    #: Run settings that do not apply to this kind (refused by its ``load_data``): its
    #: ``--help`` leaves them out.
    run_settings_unused: tuple[str, ...] = ()
    #: The datasets it trains on, and those of them that need ``data_root``: checked when a
    #: config is made, before any data loads or a cell starts.
    datasets: tuple[str, ...] = ()
    datasets_needing_root: tuple[str, ...] = ()

    def check_dataset(self, dataset: str, data_root) -> None:
        """ValueError unless this kind trains on ``dataset`` with this ``data_root``."""
        if self.datasets and dataset not in self.datasets:
            raise ValueError(
                f"the {self.name} kind trains on: {', '.join(self.datasets)}; got dataset "
                f"{dataset!r}"
            )
        if dataset in self.datasets_needing_root and data_root is None:
            raise ValueError(f"dataset {dataset!r} needs data_root (--data-root DIR)")


def _load_images(run) -> tuple:
    from robustvae.data import load_dataset

    kwargs = dict(root=run.data_root, image_size=run.image_size, test_fraction=run.test_fraction)
    return load_dataset(run.dataset, "train", **kwargs), load_dataset(run.dataset, "test", **kwargs)


def _image_datasets() -> dict:
    from robustvae.data.datasets import DATASETS

    return {"datasets": DATASETS, "datasets_needing_root": ("folder",)}


def _autoencoder(name: str, summary: str) -> Kind:
    from robustvae.models import AutoencoderConfig, build_model

    return Kind(
        name=name,
        summary=summary,
        config=AutoencoderConfig,
        build=lambda config, shape: build_model(config.resolve(name, shape)),
        check=lambda config, shape: config.resolve(name, shape),
        load_data=_load_images,
        **_image_datasets(),
    )


def _vaegan() -> Kind:
    from robustvae.models.vaegan import VAEGAN, VAEGANConfig

    return Kind(
        name="vaegan",
        summary="VAE-GAN (Larsen et al.): the likelihood in a discriminator's features",
        config=VAEGANConfig,
        build=lambda config, shape: VAEGAN(config, shape),
        check=lambda config, shape: config.check(shape),
        load_data=_load_images,
        **_image_datasets(),
    )


def _gan() -> Kind:
    from robustvae.models.gan import GAN, GANConfig

    return Kind(
        name="gan",
        summary="GAN with the VAE-GAN's decoder and discriminator (Larsen et al.'s baseline)",
        config=GANConfig,
        build=lambda config, shape: GAN(config, shape),
        check=lambda config, shape: config.check(shape),
        load_data=_load_images,
        **_image_datasets(),
    )


def _restoration_data(run) -> tuple:
    from robustvae.restoration.data import load_images, tile

    if run.image_size is not None:
        raise ValueError(
            "image_size does not apply to the restore kind: it trains on crops of the images "
            "at their own size (see crop)"
        )
    crop = run.model.crop
    train = load_images(run.dataset, "train", run.data_root, run.test_fraction)
    test = load_images(run.dataset, "test", run.data_root, run.test_fraction)
    return tile(train, 2 * crop, crop), tile(test, 2 * crop, 2 * crop)


def _restore() -> Kind:
    from robustvae.restoration.data import DATASETS
    from robustvae.restoration.model import Restorer, RestorerConfig

    return Kind(
        name="restore",
        summary="Noise2Noise restorer (Lehtinen et al.): noisy → noisy, any loss",
        config=RestorerConfig,
        build=lambda config, shape: Restorer(config, shape),
        check=lambda config, shape: config.check(shape),
        load_data=_restoration_data,
        run_defaults={"dataset": "photos", "batch_size": 16, "epochs": 15},
        run_settings_unused=("image_size",),
        datasets=DATASETS,
        datasets_needing_root=("folder",),
    )


def _stereo_data(run) -> tuple:
    from robustvae.depth.data import SCENES, load_folder, load_scene, stereo_tiles, warn_beyond

    if run.image_size is not None:
        raise ValueError("image_size does not apply to the depth kind: it trains on crops")
    crop, margin = run.model.crop, run.model.max_disparity
    if run.dataset in SCENES:  # train on one bundled scene, test on the other
        other = next(name for name in SCENES if name != run.dataset)
        train, test = [load_scene(run.dataset)], [load_scene(other)]
    elif run.dataset == "stereo-folder":
        if run.data_root is None:
            raise ValueError("dataset 'stereo-folder' needs data_root (--data-root DIR)")
        train = test = load_folder(run.data_root)
        if not any(scene.scorable(margin) for scene in test):  # refused now, not after training
            raise ValueError(
                f"{run.data_root}: no pair has ground-truth disparity to score the run on, "
                f"known somewhere in (0, max_disparity = {margin}] (put it in disparity/, "
                "disp_occ_0/ or each scene's disp0.pfm)"
            )
    else:
        raise ValueError(
            f"the depth kind trains on: {', '.join(SCENES)}, stereo-folder; got {run.dataset!r}"
        )
    warn_beyond(train if test is train else train + test, margin)
    return (
        stereo_tiles(train, 2 * crop, crop // 4, margin),
        stereo_tiles(test, 2 * crop, 2 * crop, margin),
    )


def _depth() -> Kind:
    from robustvae.depth.data import SCENES
    from robustvae.depth.model import DepthConfig, DepthTask

    return Kind(
        name="depth",
        summary="self-supervised stereo disparity (Barron's depth experiment), any loss",
        config=DepthConfig,
        build=lambda config, shape: DepthTask(config, shape),
        check=lambda config, shape: config.check(shape),
        load_data=_stereo_data,
        run_defaults={
            "dataset": "motorcycle",
            "batch_size": 4,
            "epochs": 10,
            "lr_schedule": "cosine",
            "ema": 0.99,
        },
        run_settings_unused=("image_size",),
        datasets=(*SCENES, "stereo-folder"),
        datasets_needing_root=("stereo-folder",),
    )


KINDS: dict[str, Kind] = {
    "vae": _autoencoder("vae", "variational autoencoder, any reconstruction loss"),
    "wae": _autoencoder("wae", "Wasserstein autoencoder (MMD), any reconstruction loss"),
    "vaegan": _vaegan(),
    "gan": _gan(),
    "restore": _restore(),
    "depth": _depth(),
}


def get_kind(name: str) -> Kind:
    """The registered kind ``name`` (ValueError listing the kinds otherwise)."""
    if not isinstance(name, str) or name not in KINDS:
        raise ValueError(f"kind must be one of: {', '.join(KINDS)}; got {name!r}")
    return KINDS[name]
