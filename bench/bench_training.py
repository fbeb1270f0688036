"""Training throughput: the trainer against a plain hand-written loop, and data load times.

    .venv/bin/python bench/bench_training.py [--epochs 5] [--rounds 5] [--device cpu|cuda]

1. VAE (MLP, width 1, latent 8, l2), batch 100, mnist-5k (4,000 training images): images/s of
   the trainer's training loop (the per-epoch ``seconds`` it records, which exclude test
   evaluation and checkpointing) and of its whole ``train()`` call, each against a plain loop
   of the same model, optimiser, batches and steps, run in the same process. Runs alternate
   so that drift in machine speed hits both, and the best of the rounds counts.
2. The same for VAE (Conv, width 1/8; ``--conv-width`` on a GPU) with logcosh (a = 100).
3. The VAE-GAN (Conv, width 1/8 or ``--conv-width``), against a hand-written loop with its
   three RMSProp optimizers, the same terms and the same balancing rule.
4. The two-group adversarial toy of tests/toys.py (two SGD optimizers, both gradients from one
   forward pass), against a hand-written two-optimizer loop.
5. The plain loop again with one host synchronisation per step (the trainer's finite check:
   the step's terms copied to the host), to show what that check costs.
6. Full Fashion-MNIST (70k) load time, cold (empty cache) and warm.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("ROBUSTVAE_CACHE", tempfile.mkdtemp(prefix="robustvae-bench-cache-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from toys import GanToy, GanToyConfig, load_gan_data, register  # noqa: E402

from robustvae.data import Batches, load_dataset  # noqa: E402
from robustvae.kinds import KINDS  # noqa: E402
from robustvae.models import build_model  # noqa: E402
from robustvae.training import RunConfig, train  # noqa: E402

STAT = {"pick": max}  # best of the rounds (--stat median: their median)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rows_per_second(batches: Batches, epochs: int, device: torch.device, step) -> float:
    """Rows per second of ``step(batch) -> rows`` over ``epochs`` epochs of ``batches``."""
    rows, seconds = 0, 0.0
    for epoch in range(epochs):
        batches.set_epoch(epoch)
        _sync(device)
        start = time.perf_counter()
        for batch in batches:
            rows += step(batch)
        _sync(device)
        seconds += time.perf_counter() - start
    return rows / seconds


def plain_loop(config: RunConfig, epochs: int, sync_each_step: bool = False) -> float:
    """images/s of a hand-written loop: same model, Adam, batches and number of steps.
    ``sync_each_step`` copies the step's terms to the host, as the trainer's finite check does."""
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    data = load_dataset(config.dataset, "train")
    model = build_model(config.model.resolve(config.kind, data.item_shape)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    batches = Batches(data, config.batch_size, shuffle=True, seed=config.seed)

    def step(batch) -> int:
        images = batch["image"].to(device, non_blocking=True)
        terms = model(images)
        if sync_each_step:
            torch.stack([v.detach().float() for v in terms.values()]).cpu()
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        return len(images)

    return _rows_per_second(batches, epochs, device, step)


def plain_two_group_loop(epochs: int, device: torch.device) -> float:
    """rows/s of a hand-written two-optimizer loop over the toy's nets and batches."""
    torch.manual_seed(0)
    task = GanToy(GanToyConfig(hidden=256)).to(device)
    dis = torch.optim.SGD(task.discriminator.parameters(), lr=0.05)
    gen = torch.optim.SGD(task.generator.parameters(), lr=0.05)
    batches = Batches(load_gan_data(None)[0], 32, shuffle=True, seed=0)

    def step(batch) -> int:
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        terms = task.loss_terms(batch)  # the same terms the trainer logs
        dis.zero_grad(set_to_none=True)
        d_loss = terms["d_real"] + terms["d_fake"]
        d_loss.backward(inputs=list(task.discriminator.parameters()), retain_graph=True)
        gen.zero_grad(set_to_none=True)
        terms["g_loss"].backward(inputs=list(task.generator.parameters()))
        dis.step()
        gen.step()
        return len(batch["point"])

    return _rows_per_second(batches, epochs, device, step)


def plain_vaegan_loop(config: RunConfig, epochs: int) -> float:
    """images/s of a hand-written three-optimizer VAE-GAN loop: the same nets, terms, balancing
    rule, RMSProp settings and batches as the trainer's."""
    from robustvae.models.vaegan import RMSPROP, VAEGAN, balancing

    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    data = load_dataset(config.dataset, "train")
    task = VAEGAN(config.model, data.item_shape).to(device)
    lr = config.model.vaegan_lr
    nets = {
        "encoder": [*task.encoder.parameters(), *task.feature_loss.parameters()],
        "decoder": list(task.decoder.parameters()),
        "discriminator": list(task.discriminator.parameters()),
    }
    optimizers = {n: torch.optim.RMSprop(p, lr=lr, **RMSPROP) for n, p in nets.items()}
    batches = Batches(data, config.batch_size, shuffle=True, seed=config.seed)
    gamma, eq, margin = config.model.gamma, config.model.equilibrium, config.model.margin

    def step(batch) -> int:
        x = batch["image"].to(device, non_blocking=True)
        terms = task._terms(x)
        real, fake = torch.stack([terms["cost_real"], terms["cost_fake"]]).tolist()
        train_dis, train_dec = balancing(real, fake, eq, margin)
        losses = {
            "encoder": terms["kl"] + terms["llike"],
            "decoder": gamma * terms["llike"] + terms["dec_gan"],
            "discriminator": terms["gan"],
        }
        chosen = ["encoder"] + ["decoder"] * train_dec + ["discriminator"] * train_dis
        for name in chosen:
            optimizers[name].zero_grad(set_to_none=True)
            losses[name].backward(inputs=nets[name], retain_graph=True)
        for name in chosen:
            optimizers[name].step()
        return len(x)

    return _rows_per_second(batches, epochs, device, step)


def trainer(config: RunConfig, epochs: int) -> tuple[float, float]:
    """(rows/s of the training loop, rows/s of the whole train() call)."""
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        result = train(config.replace(epochs=epochs), run_dir)
        whole = time.perf_counter() - start
        rows = [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    n = len(KINDS[config.kind].load_data(config)[0]) * epochs
    del result
    return n / sum(r["seconds"] for r in rows), n / whole


def compare(name: str, config: RunConfig, epochs: int, rounds: int, plain) -> None:
    """Best of ``rounds`` alternating runs of each (other load on the machine only slows a
    run down, so the fastest is the least disturbed)."""
    loop, inner, whole = [], [], []
    for _ in range(rounds):
        loop.append(plain())
        a, b = trainer(config, epochs)
        inner.append(a)
        whole.append(b)
    m = STAT["pick"]
    print(
        f"{name}: plain loop {m(loop):.0f} rows/s; trainer loop {m(inner):.0f} rows/s "
        f"({m(inner) / m(loop):.3f}×); whole train() {m(whole):.0f} rows/s "
        f"({m(whole) / m(loop):.2f}×, incl. test evaluation and checkpoints)",
        flush=True,
    )


def sync_cost(name: str, config: RunConfig, epochs: int, rounds: int) -> None:
    free, synced = [], []
    for _ in range(rounds):
        free.append(plain_loop(config, epochs))
        synced.append(plain_loop(config, epochs, sync_each_step=True))
    m = STAT["pick"]
    print(
        f"{name}: plain loop {m(free):.0f} img/s without a per-step sync, {m(synced):.0f} img/s "
        f"with one ({m(synced) / m(free):.3f}×)",
        flush=True,
    )


def load_times() -> None:
    if not Path("/usr/share/datasets/fashion-mnist").is_dir():
        print("Fashion-MNIST: not installed (apt-get install dataset-fashion-mnist)")
        return
    with tempfile.TemporaryDirectory() as cache:
        timings = []
        for label in ("cold", "warm"):
            start = time.perf_counter()
            for split in ("train", "test"):
                load_dataset("fashion-mnist", split, cache_dir=cache)
            timings.append(f"{label} {time.perf_counter() - start:.2f} s")
    print("Fashion-MNIST 70k load: " + ", ".join(timings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--conv-width", type=float, default=0.125)
    parser.add_argument("--only", choices=("vae", "vaegan", "toy", "sync", "load"), default=None)
    parser.add_argument("--stat", choices=("best", "median"), default="best")
    args = parser.parse_args()
    STAT["pick"] = max if args.stat == "best" else statistics.median
    register(KINDS)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, {name}, {torch.get_num_threads()} threads", flush=True)
    load_dataset("mnist-5k", "train")  # parse and cache before timing
    base = RunConfig.make(progress=False, tensorboard=False, device=args.device)
    conv = base.replace(
        arch="conv", width=args.conv_width, loss="logcosh", loss_params={"a": 100.0}
    )
    conv_epochs = max(1, args.epochs // (5 if device.type == "cpu" else 1))
    if args.only in (None, "vae"):
        compare("VAE MLP w1 l2", base, args.epochs, args.rounds,
                lambda: plain_loop(base, args.epochs))  # fmt: skip
        compare(f"VAE Conv w{args.conv_width:g} logcosh", conv, conv_epochs, args.rounds,
                lambda: plain_loop(conv, conv_epochs))  # fmt: skip
    if args.only in (None, "vaegan"):
        vaegan = RunConfig.make(
            kind="vaegan", width=args.conv_width, progress=False, tensorboard=False,
            device=args.device,
        )  # fmt: skip
        gan_epochs = conv_epochs
        compare(f"VAE-GAN w{args.conv_width:g}", vaegan, gan_epochs, args.rounds,
                lambda: plain_vaegan_loop(vaegan, gan_epochs))  # fmt: skip
    if args.only in (None, "toy"):
        toy = RunConfig.make(
            kind="gan-toy", hidden=256, batch_size=32, progress=False, tensorboard=False,
            device=args.device,
        )  # fmt: skip
        toy_epochs = 20 * args.epochs
        compare("two-group toy (hidden 256)", toy, toy_epochs, args.rounds,
                lambda: plain_two_group_loop(toy_epochs, device))  # fmt: skip
    if args.only in (None, "sync"):
        sync_cost("VAE MLP w1 l2", base, args.epochs, args.rounds)
        sync_cost(f"VAE Conv w{args.conv_width:g} logcosh", conv, conv_epochs, args.rounds)
    if args.only in (None, "load"):
        load_times()


if __name__ == "__main__":
    main()
