"""The adversarial game inside an epoch: the discriminator's test accuracies on samples and on
real images every N training steps, where a run's metrics.jsonl has them once an epoch.

    python scripts/probe_discriminator.py OUT --every 40 [--set KEY=VALUE ...]

trains one run into OUT (a fresh directory) with the given settings on top of the VAE-GAN's
defaults (``--set kind=gan`` for the GAN; default: fashion-mnist, width 1/8, 1 epoch, batch
100) and prints "step accuracy-on-samples accuracy-on-reals" every N steps (counted over the
run). The probe evaluates the whole test split with the run's own test terms, then restores
the random states it drew from (the CPU's and the run's GPU's), so training follows the run it
would be without the probe: where N divides an epoch's steps, the epoch's last probe equals its
row in OUT/metrics.jsonl. Each probe costs a pass over the test split. One process only, and
no weight averaging (``ema``), whose rows score other weights than the ones probed.
"""

import argparse
import dataclasses
import os

import torch

from robustvae.kinds import KINDS, get_kind
from robustvae.training import RunConfig, train
from robustvae.training.terms import test_terms

DEFAULTS = dict(
    kind="vaegan",
    dataset="fashion-mnist",
    width=0.125,
    epochs=1,
    batch_size=100,
    tensorboard=False,
    progress=False,
)


def _setting(text: str) -> tuple[str, object]:
    """KEY=VALUE with VALUE read as a bool (true/false), None (none), an int, a float or else
    a string."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    words = {"true": True, "false": False, "none": None}
    if value.lower() in words:
        return key, words[value.lower()]
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def probing(build, every: int, test_set, seed: int, rows: list):
    """``build`` (a kind's task builder) whose task, after every ``every``-th training step,
    appends (step, accuracy on samples, accuracy on reals) over ``test_set`` to ``rows``."""

    def build_probed(config, shape):
        task = build(config, shape)
        step = task.training_step
        done = [0]

        def training_step(batch, updates):
            terms = step(batch, updates)
            done[0] += 1
            if done[0] % every == 0:
                device = next(task.parameters()).device
                cuda = [device.index or 0] if device.type == "cuda" else []
                with torch.random.fork_rng(devices=cuda):
                    test = test_terms(task, test_set, device, seed)
                rows.append((done[0], test["acc_sampled"], test["acc_real"]))
                print(f"{done[0]} {test['acc_sampled']:.4f} {test['acc_real']:.4f}", flush=True)
            return terms

        task.training_step = training_step
        return task

    return build_probed


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="a fresh run directory")
    parser.add_argument("--every", type=int, default=40, help="steps between probes")
    parser.add_argument("--set", type=_setting, action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be at least 1")
    try:
        config = RunConfig.make(**{**DEFAULTS, **dict(args.set)})
    except ValueError as error:
        parser.error(str(error))
    if config.ema > 0:
        parser.error("the epoch rows of a run with ema score the averaged weights: leave ema 0")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        parser.error("the probe runs in one process (no torchrun)")
    kind = get_kind(config.kind)
    if kind.name not in ("vaegan", "gan"):
        parser.error(f"kind {kind.name!r} has no discriminator: use vaegan or gan")
    _, test_set = kind.load_data(config)
    rows: list = []
    build = probing(kind.build, args.every, test_set, config.seed, rows)
    KINDS[kind.name] = dataclasses.replace(kind, build=build)
    try:
        train(config, args.out)
    finally:
        KINDS[kind.name] = kind
    return rows


if __name__ == "__main__":
    main()
