"""Forward + backward cost of each loss, as a ratio to F.mse_loss(reduction='sum') in the same run,
and to the plain formula a user would write for it (autograd, eager).

    .venv/bin/python bench/bench_losses.py [--log2-numel 24] [--repeats 9] [--threads N]

Each case sums its loss over 2^24 float32 elements (U(0, 1) inputs and targets, as image
residuals) and backpropagates to the input; the figure is the median wall time over repeats
after one warm-up call, divided by the median of the mse_loss baseline measured alongside
(baseline and case alternate, so drifts in machine speed hit both). The default mode is the
one the trainer uses: loss modules with fused (torch.compile) evaluation. The first-call time
of each compiled case is printed too (cold: an empty inductor cache; pass --warm-cache to
reuse the default cache).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2-numel", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--warm-cache", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (timed with synchronize)")
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not args.warm_cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="robustvae-bench-")
    os.environ["ROBUSTVAE_COMPILE"] = "1"
    if args.threads:
        torch.set_num_threads(args.threads)

    from robustvae.losses import (
        AdaptiveLoss,
        CauchyNLL,
        GeneralLoss,
        LaplaceNLL,
        LogCoshLoss,
        NormalNLL,
        StudentTNLL,
        set_compile,
    )
    from robustvae.losses import functional as LF
    from robustvae.losses.partition import log_partition

    n = 1 << args.log2_numel
    dims = 784
    rows = n // dims
    gen = torch.Generator().manual_seed(0)
    x, t = torch.rand(n, generator=gen), torch.rand(n, generator=gen)
    x, t = x.to(args.device), t.to(args.device)
    x_rows, t_rows = x[: rows * dims].view(rows, dims), t[: rows * dims].view(rows, dims)

    def step(loss_fn, inp, tgt):
        leaf = inp.detach().requires_grad_(True)
        loss_fn(leaf, tgt).backward()
        if leaf.is_cuda:
            torch.cuda.synchronize()

    adaptive = AdaptiveLoss(dims, reduction="sum").to(args.device)
    adaptive_fixed = AdaptiveLoss(dims, reduction="sum", learn_alpha=False, learn_scale=False).to(
        args.device
    )

    def fused(fn):
        return lambda a, b: (set_compile(True), fn(a, b))[1]

    def eager(fn):
        return lambda a, b: (set_compile(False), fn(a, b))[1]

    a = 100.0

    def plain_log_cosh(u, v):  # what a user writes: overflow-safe, autograd does the rest
        d = (u - v).abs() * a
        return ((d + F.softplus(-2.0 * d) - math.log(2.0)) / a).sum()

    def plain_charbonnier(u, v):  # the general loss at α = 1, c = 0.1, as a user writes it
        return (torch.sqrt(((u - v) / 0.1) ** 2 + 1.0) - 1.0).sum()

    c = 0.1
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    student_const = 0.5 * math.log(3 * math.pi) + math.lgamma(1.5) - math.lgamma(2.0)
    gen_dims = torch.Generator().manual_seed(1)
    alpha_dims = (torch.rand(dims, generator=gen_dims) * 1.9 + 0.05).to(args.device)
    scale_dims = (torch.rand(dims, generator=gen_dims) * 0.2 + 0.01).to(args.device)

    def barron(u, alpha, scale):  # Barron's formula as a user writes it, for 0 < α < 2
        b = (alpha - 2).abs()
        return (b / alpha * ((((u) / scale) ** 2 / b + 1) ** (alpha / 2) - 1)).sum()

    def plain_adaptive(u, v):  # its NLL at the adaptive loss's current α and c, autograd
        alpha = adaptive.alpha().detach().requires_grad_(True)
        scale = adaptive.scale().detach().requires_grad_(True)
        log_z = log_partition(alpha)
        return barron(u - v, alpha, scale) + (torch.log(scale) + log_z).sum() * rows

    plain_nlls = {
        "normal": lambda u, v: (0.5 * ((u - v) / c) ** 2 + (math.log(c) + half_log_2pi)).sum(),
        "laplace": lambda u, v: ((u - v).abs() / c + math.log(2 * c)).sum(),
        "cauchy": lambda u, v: (torch.log1p(((u - v) / c) ** 2) + math.log(math.pi * c)).sum(),
        "student-t ν=3": lambda u, v: (
            2.0 * torch.log1p(((u - v) / c) ** 2 / 3.0) + (math.log(c) + student_const)
        ).sum(),
    }
    our_nlls = {
        "normal": lambda u, v: LF.normal_nll(u - v, c).sum(),
        "laplace": lambda u, v: LF.laplace_nll(u - v, c).sum(),
        "cauchy": lambda u, v: LF.cauchy_nll(u - v, c).sum(),
        "student-t ν=3": lambda u, v: LF.student_t_nll(u - v, 3.0, c).sum(),
    }

    learned_c = torch.full((dims,), c, device=args.device, requires_grad=True)

    def plain_learned(formula):  # the NLL with a learned c per dimension, as a user writes it
        return lambda u, v: formula(u - v, learned_c).sum()

    plain_learned_nlls = {
        "normal": lambda d, s: 0.5 * (d / s) ** 2 + torch.log(s) + half_log_2pi,
        "laplace": lambda d, s: d.abs() / s + torch.log(2 * s),
        "cauchy": lambda d, s: torch.log1p((d / s) ** 2) + torch.log(math.pi * s),
        "student-t ν=3": lambda d, s: (
            2.0 * torch.log1p((d / s) ** 2 / 3.0) + (torch.log(s) + student_const)
        ),
    }
    learned_modules = {
        "normal": NormalNLL(c, num_dims=dims, learn_scale=True, reduction="sum"),
        "laplace": LaplaceNLL(c, num_dims=dims, learn_scale=True, reduction="sum"),
        "cauchy": CauchyNLL(c, num_dims=dims, learn_scale=True, reduction="sum"),
        "student-t ν=3": StudentTNLL(
            3.0, scale=c, num_dims=dims, learn_scale=True, reduction="sum"
        ),
    }

    cases = {
        "plain log-cosh formula, eager": (eager(plain_log_cosh), x, t),
        "plain Charbonnier (α=1), eager": (eager(plain_charbonnier), x, t),
        "naive log(cosh(a t))/a (overflows)": (
            eager(lambda u, v: (torch.log(torch.cosh(a * (u - v))) / a).sum()),
            x,
            t,
        ),
        "log_cosh, eager (a=100)": (eager(lambda u, v: LF.log_cosh(u, v, a, "sum")), x, t),
        "LogCoshLoss, fused (a=100)": (fused(LogCoshLoss(a, reduction="sum").to(x.device)), x, t),
        "general α=1 c=0.1, eager": (eager(lambda u, v: LF.general(u - v, 1.0, 0.1).sum()), x, t),
        "GeneralLoss α=1 c=0.1, fused": (
            fused(GeneralLoss(1.0, 0.1, reduction="sum").to(x.device)),
            x,
            t,
        ),
        "GeneralLoss α=0 c=0.1, fused": (
            fused(GeneralLoss(0.0, 0.1, reduction="sum").to(x.device)),
            x,
            t,
        ),
        "plain Barron, α and c per dim, eager": (
            eager(lambda u, v: barron(u - v, alpha_dims, scale_dims)),
            x_rows,
            t_rows,
        ),
        "general, α and c per dim, eager": (
            eager(lambda u, v: LF.general(u - v, alpha_dims, scale_dims).sum()),
            x_rows,
            t_rows,
        ),
        **{f"plain {name} NLL, eager": (eager(fn), x, t) for name, fn in plain_nlls.items()},
        **{f"{name} NLL c=0.1, eager": (eager(fn), x, t) for name, fn in our_nlls.items()},
        **{
            f"plain {name} NLL, learned c, eager": (eager(plain_learned(f)), x_rows, t_rows)
            for name, f in plain_learned_nlls.items()
        },
        **{
            f"{name} NLL, learned c per dim": (eager(m.to(args.device)), x_rows, t_rows)
            for name, m in learned_modules.items()
        },
        "plain adaptive (Barron + log c + log Z)": (eager(plain_adaptive), x_rows, t_rows),
        "AdaptiveLoss 784-dim rows, eager": (eager(adaptive), x_rows, t_rows),
        "AdaptiveLoss 784-dim rows, fused": (fused(adaptive), x_rows, t_rows),
        "AdaptiveLoss, α and c fixed, fused": (fused(adaptive_fixed), x_rows, t_rows),
    }

    def baseline():
        step(lambda u, v: F.mse_loss(u, v, reduction="sum"), x, t)

    where = torch.cuda.get_device_name() if x.is_cuda else f"{torch.get_num_threads()} threads"
    print(
        f"torch {torch.__version__}, {where}, "
        f"2^{args.log2_numel} float32 elements, median of {args.repeats}"
    )
    #: Each loss's eager and fused path against the formula a user would write for it.
    plain_of = {
        "log_cosh, eager (a=100)": "plain log-cosh formula, eager",
        "LogCoshLoss, fused (a=100)": "plain log-cosh formula, eager",
        "general α=1 c=0.1, eager": "plain Charbonnier (α=1), eager",
        "GeneralLoss α=1 c=0.1, fused": "plain Charbonnier (α=1), eager",
        "general, α and c per dim, eager": "plain Barron, α and c per dim, eager",
        **{f"{n} NLL c=0.1, eager": f"plain {n} NLL, eager" for n in plain_nlls},
        **{f"{n} NLL, learned c per dim": f"plain {n} NLL, learned c, eager" for n in plain_nlls},
        "AdaptiveLoss 784-dim rows, eager": "plain adaptive (Barron + log c + log Z)",
        "AdaptiveLoss 784-dim rows, fused": "plain adaptive (Barron + log c + log Z)",
    }
    ratios: dict[str, float] = {}
    print(
        f"{'case':40s} {'first call s':>12s} {'median ms':>10s} {'× mse_loss':>10s} {'× plain':>8s}"
    )
    baseline()
    base_all = []
    for name, (fn, inp, tgt) in cases.items():
        if args.only not in name:
            continue
        start = time.perf_counter()
        step(fn, inp, tgt)
        first = time.perf_counter() - start
        times, bases = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            baseline()
            bases.append(time.perf_counter() - start)
            start = time.perf_counter()
            step(fn, inp, tgt)
            times.append(time.perf_counter() - start)
        base_all += bases
        ratio = statistics.median(times) / statistics.median(bases)
        ratios[name] = ratio
        plain = ratios.get(plain_of.get(name, ""))
        versus = f"{ratio / plain:8.2f}" if plain else f"{'':8s}"
        print(
            f"{name:40s} {first:12.2f} {1e3 * statistics.median(times):10.1f} {ratio:10.2f} "
            f"{versus}"
        )
    print(
        f"{'F.mse_loss sum (baseline)':40s} {'':12s} {1e3 * statistics.median(base_all):10.1f} "
        f"{1.0:10.2f}"
    )
    assert math.isfinite(statistics.median(base_all))


if __name__ == "__main__":
    main()
