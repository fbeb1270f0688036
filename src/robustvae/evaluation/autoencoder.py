"""The evaluator of the image-generating kinds (``vae``, ``wae``, ``vaegan``, ``gan``): every
metric of a trained run. A model without an encoder (``gan``) gets the metrics of its samples
only: no reconstruction, SSIM, errors or MMD to the prior.

- sharpness of reconstructed test images and of generated samples (and of the test images
  themselves, for scale), over ``n_images`` (1,000 as the paper);
- FID of ``n_samples`` generated samples against the test split (10,000 as the paper; fewer
  if the split is smaller), in the dataset classifier's coding layer, with its test accuracy;
- SSIM, PSNR, squared L2 and L1 of the reconstructions (per image, averaged);
- with a local Inception weights file, FID in Inception-v3's pool features as well;
- MMD² between the codes of the test images and draws from the prior, for every model;
- for the adversarial kinds, the discriminator's update share (its lowest over the epochs,
  and its mean) from metrics.jsonl; its test accuracies are among the test terms;
- the test means of the training terms (loss, recon, KL or MMD), and for a VAE with a
  likelihood loss the negative ELBO in nats per image and bits per dimension.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from robustvae.evaluation.autoencoder_pictures import write_all
from robustvae.evaluation.evaluator import Evaluator
from robustvae.evaluation.fid_classifiers import dataset_classifier
from robustvae.kinds import get_kind
from robustvae.losses import LIKELIHOOD_LOSSES
from robustvae.metrics import quality
from robustvae.metrics.classifier import CodingLayer
from robustvae.metrics.fid import frechet_distance
from robustvae.metrics.sharpness import sharpness
from robustvae.models import mmd_imq
from robustvae.models.latent import Encoding
from robustvae.training import RunDir, load_run, test_terms

#: (key, title) of the results-table columns, in order.
_COLUMNS = (
    ("sharpness_reconstructed", "sharpness (recon.)"),
    ("sharpness_generated", "sharpness (gen.)"),
    ("fid", "FID"),
    ("fid_inception", "FID (Inception)"),
    ("ssim", "SSIM"),
    ("sq_l2", "squared L2 (posterior mean)"),
    ("test_kl", "KL"),
    ("mmd_to_prior", "MMD² to prior"),
    ("negative_elbo_bits_per_dim", "−ELBO (bits/dim)"),
    ("discriminator_share", "D's update share (min over epochs)"),
    ("test_acc_sampled", "D's test accuracy on samples"),
)
LATENT_TERMS = (("kl", "KL(q(z|x) ‖ p(z))"), ("mmd", "MMD to the prior"))
ADVERSARIAL_KINDS = ("vaegan", "gan")
#: The game's health, per epoch: how often the discriminator updated, how well it tells test
#: images apart, and the size of its gradients.
GAME_TERMS = [
    ("update_share/discriminator", "discriminator: share of steps it updated"),
    ("acc_real", "discriminator: test accuracy on real images"),
    ("acc_sampled", "discriminator: test accuracy on samples"),
    ("grad_norm/discriminator", "discriminator: mean gradient norm"),
]


def curve_terms(configs: list, histories: dict) -> list[tuple[str, str]]:
    """The test terms the report plots against steps: the −ELBO when every run is a VAE with
    a likelihood loss, squared L2, and the latent terms the runs logged."""
    likelihoods = all(
        c.kind == "vae" and getattr(c.model, "loss", None) in LIKELIHOOD_LOSSES for c in configs
    )
    terms = [("loss", "test −ELBO (nats per image)")] if likelihoods else []
    if any(c.kind != "gan" for c in configs):
        terms.append(("sq_l2", "test squared L2 of training's reconstructions (z sampled)"))
    terms += [
        (name, title)
        for name, title in LATENT_TERMS
        if any(name in h[0]["test"] for h in histories.values() if h)
    ]
    if any(c.kind in ADVERSARIAL_KINDS for c in configs):
        terms += GAME_TERMS
    return terms


@torch.no_grad()
def _in_batches(fn, images: torch.Tensor, device, size: int = 500) -> torch.Tensor:
    return torch.cat([fn(batch.to(device)).cpu() for batch in images.split(size)])


@torch.no_grad()
def mmd_to_prior(model, images: torch.Tensor, generator: torch.Generator, device) -> float:
    """Unbiased IMQ-kernel MMD² (the WAE's, :func:`robustvae.models.mmd_imq`) between the codes
    of ``images`` — a draw from q(z|x) for a VAE, the encoding for a WAE — and as many draws
    from the prior: how well the aggregate posterior matches p(z), comparable across models."""
    was_training = model.training
    model.eval()  # conv nets: BatchNorm's running statistics, never the batch's
    codes = []
    for batch in images.split(500):
        batch = batch.to(device)
        if hasattr(model, "posterior"):
            mean, log_var = model.posterior(batch)
            noise = torch.randn(mean.shape, generator=generator).to(device)
            codes.append((mean + torch.exp(0.5 * log_var) * noise).cpu())
        else:
            codes.append(model.encode(batch).cpu())
    model.train(was_training)
    codes = torch.cat(codes).double()
    scale = model.config.prior_scale
    prior = scale * torch.randn(codes.shape, generator=generator, dtype=torch.float64)
    return mmd_imq(codes, prior, prior_variance=scale**2).item()


def _seeded_test_terms(model, test, device: str, seed: int) -> dict[str, float]:
    """The test means of the training terms, with the VAE's sampling noise drawn from a
    generator seeded with ``seed`` (the caller's random state is left as it was)."""
    devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return test_terms(model, test, torch.device(device))


def _test_data(config):
    return get_kind(config.kind).load_data(config)[1]


def evaluate(run_dir: str | Path, settings: dict, device: str = "cpu") -> dict:
    """Every metric of ``run_dir``'s best checkpoint (``settings``: see
    ``robustvae.evaluation.evaluation_settings``); with ``settings["inception"]`` (a local
    weights file of the FID Inception-v3, see :mod:`robustvae.metrics.inception`) also the
    Inception-feature FID."""
    n_images, n_samples = settings["images"], settings["samples"]
    config, model = load_run(run_dir, "best", device)
    test = _test_data(config)
    images = test.images[:n_images]
    classifier_fid = settings["fid"] and test.labels is not None
    if not classifier_fid and settings["inception"] is None:
        n_samples = min(n_samples, len(images))  # no FID: samples only for their sharpness
    encodes = isinstance(model, Encoding)
    generator = torch.Generator().manual_seed(settings["seed"])
    samples = torch.cat(
        [
            model.sample(min(500, n_samples - i), generator=generator).cpu()
            for i in range(0, n_samples, 500)
        ]
    )
    results = {
        "sharpness_generated": sharpness(samples[:n_images]),
        "sharpness_test_images": sharpness(images),
        "test": _seeded_test_terms(model, test, device, settings["seed"]),
    }
    if encodes:
        recon = _in_batches(model.reconstruct, images, device)
        results.update(
            sharpness_reconstructed=sharpness(recon),
            ssim=quality.ssim_per_image(recon, images).mean().item(),
            psnr=quality.psnr_per_image(recon, images).mean().item(),
            sq_l2=quality.squared_l2_per_image(recon, images).mean().item(),
            l1=quality.l1_per_image(recon, images).mean().item(),
        )
    if encodes and len(images) >= 2:  # the unbiased estimator needs two codes
        results["mmd_to_prior"] = mmd_to_prior(model, images, generator, device)
    if config.kind == "vae" and config.model.loss in LIKELIHOOD_LOSSES:
        nats = results["test"]["recon"] + results["test"]["kl"]
        dims = math.prod(test.images.shape[1:])
        results["negative_elbo_nats"] = nats
        results["negative_elbo_bits_per_dim"] = nats / (dims * math.log(2))
    shares = [
        row["update_share"]["discriminator"]
        for row in RunDir(run_dir).read_metrics()
        if "discriminator" in row.get("update_share", {})
    ]
    if shares:  # the adversarial kinds: the game's health over the whole run
        results["discriminator_share"] = min(shares)
        results["discriminator_share_mean"] = sum(shares) / len(shares)
    results["images_used"] = len(images)
    results["samples_drawn"] = len(samples)
    if settings["fid"] and test.labels is None:
        results["fid_skipped"] = (
            f"{config.dataset} has no labels to train the FID feature classifier on; pass a "
            "local Inception weights file (--inception) for FID"
        )
    if classifier_fid:
        classifier = dataset_classifier(
            config.dataset, root=config.data_root, image_size=config.image_size
        )
        real = test.images[:n_samples]
        features = CodingLayer(classifier.model)
        results["fid"] = frechet_distance(features, real, samples, device=device)
        results["fid_samples"] = [len(real), len(samples)]
        results["classifier_test_accuracy"] = classifier.test_accuracy
        results["fid_classifier"] = classifier.origin
    if settings["inception"] is not None:
        from robustvae.metrics.inception import InceptionFeatures

        real = test.images[:n_samples]
        features = InceptionFeatures(settings["inception"]).to(device)
        results["fid_inception"] = frechet_distance(
            features, real, samples, device=device, batch_size=50
        )
    return results


def draw(run_dir: str | Path, device: str = "cpu") -> list[Path]:
    """Samples, reconstructions and interpolations of the best checkpoint, as PNGs."""
    config, model = load_run(run_dir, "best", device)
    return write_all(model, _test_data(config).images, run_dir)


def training_loss(model_config) -> tuple | None:
    """The reconstruction loss of a VAE or WAE and its weight λ; None for the adversarial
    kinds, whose losses are not between images."""
    if not hasattr(model_config, "loss_spec"):
        return None
    return model_config.loss_spec(), model_config.recon_weight


#: The columns each row is compared with its baseline on are those present of FID, SSIM and
#: the −ELBO; no score is kept per test image.
EVALUATOR = Evaluator(
    evaluate=evaluate,
    draw=draw,
    columns=_COLUMNS,
    paired=("fid", "ssim", "negative_elbo_bits_per_dim"),
    panels=("samples", "reconstructions", "interpolations"),
    pictures_note="Rows of reconstructions alternate originals and their reconstructions.",
    curve_terms=curve_terms,
    training_loss=training_loss,
)
