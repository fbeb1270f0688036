"""A loss gallery: every registered loss, its gradient and Barron's general distribution, as PNGs.

Pure plotting: every value comes from ``robustvae.losses`` (functional forms), every gradient
from ``torch.autograd``. Figures are drawn with matplotlib's object API on the Agg canvas, so
nothing touches a display or pyplot's global state.

    robustvae gallery --out outputs/gallery
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from robustvae.losses import functional as LF
from robustvae.losses import log_partition
from robustvae.losses.partition import ALPHA_MAX

__all__ = [
    "DENSITY_ALPHAS",
    "density",
    "density_integral",
    "density_integrals",
    "draw_gallery",
]

DTYPE = torch.float64
T_MAX = 3.0  # residuals t ∈ [-T_MAX, T_MAX]
T_POINTS = 2401  # step 0.0025: resolves tanh(100 t), whose transition is ~0.02 wide

LOGCOSH_A = (1.0, 3.0, 10.0, 100.0)
GENERAL_ALPHAS = (-math.inf, -2.0, 0.0, 0.5, 1.0, 1.5, 2.0, math.inf)
STUDENT_DFS = (1.0, 3.0, 10.0)
ADAPTIVE_ALPHAS = (0.0, 1.0, 2.0)
DENSITY_ALPHAS = (0.0, 0.5, 1.0, 1.5, 2.0, 4.0, 8.0)

# Integration ranges for the density check. For α ≥ 0.5 the density is < e^-80 past |x| = 1e3.
# At α = 0 it is a Cauchy of scale √2, whose mass beyond |x| = L is ≈ (2/π)·√2/L: 9e-4 at
# L = 1e3, 9e-9 at L = 1e8, so small α integrate out to 1e8 (the grid is sinh-spaced, so
# that costs no more points).
X_MAX_LIGHT = 1e3
X_MAX_HEAVY = 1e8
QUAD_POINTS = 400_001

# One distinct colour per α, blue (redescending, α < 0) through green to red (α = +inf).
GENERAL_COLOURS = (
    "#08306b",
    "#2171b5",
    "#17becf",
    "#2ca02c",
    "#bcbd22",
    "#ff7f0e",
    "#d62728",
    "#7b0a3a",
)


# ----------------------------------------------------------------------------- curves


@dataclass(frozen=True)
class Curve:
    """One plotted function of the residual t: ``fn`` maps a float64 tensor to its values."""

    label: str
    fn: Callable[[Tensor], Tensor]
    style: dict = field(default_factory=dict)
    gradient: bool = True  # also drawn on gradients.png (reference lines are not)


@dataclass(frozen=True)
class Panel:
    title: str
    grad_title: str
    curves: tuple[Curve, ...]
    loss_ylim: tuple[float, float]
    grad_ylim: tuple[float, float]
    t_max: float = T_MAX
    legend_loc: str = "upper center"
    legend_cols: int = 1
    note: str = ""


def _against_zero(loss: Callable[..., Tensor], **kwargs) -> Callable[[Tensor], Tensor]:
    """An (input, target) loss as a function of the residual t = input - 0."""
    return lambda t: loss(t, torch.zeros_like(t), reduction="none", **kwargs)


def _alpha_label(alpha: float) -> str:
    if math.isinf(alpha):
        return "+inf" if alpha > 0 else "-inf"
    return f"{alpha:g}"


def _colours(n: int, cmap: str = "viridis") -> list:
    cm = colormaps[cmap]
    return [cm(i / max(n - 1, 1) * 0.9) for i in range(n)]


def _panels() -> list[Panel]:
    l2 = _against_zero(LF.squared_l2)
    l1 = _against_zero(LF.l1)

    def logcosh(a):
        return _against_zero(LF.log_cosh, a=a)

    colours = _colours(len(LOGCOSH_A), "plasma")
    logcosh_curves = []
    for a, colour in zip(LOGCOSH_A, colours, strict=True):
        logcosh_curves.append(Curve(f"logcosh a={a:g}", logcosh(a), {"color": colour, "lw": 2}))
    for a, colour in zip(LOGCOSH_A, colours, strict=True):
        logcosh_curves.append(
            Curve(
                "|t| - log(2)/a" if a == LOGCOSH_A[0] else "",
                lambda t, a=a: l1(t) - math.log(2.0) / a,
                {"color": colour, "lw": 1, "ls": "--"},
                gradient=False,
            )
        )

    general_curves = []
    for alpha, colour in zip(GENERAL_ALPHAS, GENERAL_COLOURS, strict=True):
        general_curves.append(
            Curve(
                f"general α={_alpha_label(alpha)}",
                lambda t, alpha=alpha: LF.general(t, alpha, 1.0),
                {"color": colour, "lw": 2},
            )
        )

    nll_curves = [
        Curve("normal", LF.normal_nll, {"color": "black", "lw": 2}),
        Curve("laplace", LF.laplace_nll, {"color": "tab:red", "lw": 2}),
        Curve("cauchy", LF.cauchy_nll, {"color": "tab:blue", "lw": 4, "alpha": 0.45}),
    ]
    for df, colour in zip(STUDENT_DFS, ("tab:blue", "tab:cyan", "tab:green"), strict=True):
        nll_curves.append(
            Curve(
                f"student_t ν={df:g}",
                lambda t, df=df: LF.student_t_nll(t, df),
                {"color": colour, "lw": 1.5, "ls": "--" if df == 1 else "-"},
            )
        )

    adaptive_curves = [
        Curve(
            f"adaptive α={alpha:g}",
            lambda t, alpha=alpha: LF.general_nll(t, alpha, 1.0),
            {"color": colour, "lw": 5, "alpha": 0.5},
        )
        for alpha, colour in zip(
            ADAPTIVE_ALPHAS, ("tab:blue", "tab:green", "tab:orange"), strict=True
        )
    ] + [
        Curve("normal", LF.normal_nll, {"color": "black", "lw": 1.3, "ls": "--"}),
        Curve(
            "cauchy c=√2",
            lambda t: LF.cauchy_nll(t, math.sqrt(2.0)),
            {"color": "black", "lw": 1.3, "ls": ":"},
        ),
    ]

    a_zoom = LOGCOSH_A[-1]
    zoom = 0.06
    zoom_curves = (
        Curve(f"logcosh a={a_zoom:g}", logcosh(a_zoom), {"color": colours[-1], "lw": 2.5}),
        Curve(
            "½·a·l2",
            lambda t: 0.5 * a_zoom * l2(t),
            {"color": "black", "lw": 1, "ls": "--"},
        ),
        Curve("l1", l1, {"color": "tab:red", "lw": 1, "ls": "--"}),
        Curve(
            "|t| - log(2)/a",
            lambda t: l1(t) - math.log(2.0) / a_zoom,
            {"color": "tab:brown", "lw": 1.2, "ls": ":"},
            gradient=False,
        ),
    )

    return [
        Panel(
            "l2 and l1",
            "l2 and l1: 2t and sign(t)",
            (
                Curve("l2  (t²)", l2, {"color": "black", "lw": 2}),
                Curve("l1  (|t|)", l1, {"color": "tab:red", "lw": 2}),
            ),
            loss_ylim=(-0.3, 9.5),
            grad_ylim=(-6.5, 6.5),
        ),
        Panel(
            "logcosh: (1/a)·log cosh(a·t), dashed: asymptote",
            "logcosh: derivative tanh(a·t)",
            tuple(logcosh_curves),
            loss_ylim=(-0.8, 3.2),
            grad_ylim=(-1.3, 1.3),
            legend_cols=2,
        ),
        Panel(
            "general: ρ(t, α, c=1)",
            "general: ∂ρ/∂t, bounded for α ≤ 1, redescending for α < 1",
            tuple(general_curves),
            loss_ylim=(-0.1, 4.6),
            grad_ylim=(-3.2, 3.2),
            note="α=+inf leaves the frame (ρ=e^(t²/2)-1)",
        ),
        Panel(
            "NLLs (scale c=1): −log p(t)",
            "NLLs: cauchy and student_t redescend, laplace is sign(t)",
            tuple(nll_curves),
            loss_ylim=(0.5, 6.5),
            grad_ylim=(-3.2, 3.2),
            legend_cols=2,
        ),
        Panel(
            "adaptive at fixed α, c=1: ρ + log Z(α)",
            "adaptive: same gradient as general (log Z(α) is constant in t)",
            tuple(adaptive_curves),
            loss_ylim=(0.5, 6.5),
            grad_ylim=(-3.2, 3.2),
            legend_cols=2,
            note="α=2 is normal, α=0 is cauchy c=√2",
        ),
        Panel(
            f"near 0: logcosh a={a_zoom:g} is quadratic only for |t| ≲ 1/a",
            f"near 0: tanh({a_zoom:g}·t) is linear only for |t| ≲ 1/a",
            zoom_curves,
            loss_ylim=(-0.002, 0.062),
            grad_ylim=(-1.3, 1.3),
            t_max=zoom,
        ),
    ]


def _values_and_gradients(curve: Curve, t_max: float) -> tuple[Tensor, Tensor, Tensor]:
    """t, f(t) and df/dt by autograd (f is elementwise, so d(sum f)/dt is f'(t))."""
    t = torch.linspace(-t_max, t_max, T_POINTS, dtype=DTYPE, requires_grad=True)
    values = curve.fn(t)
    (grad,) = torch.autograd.grad(values.sum(), t)
    return t.detach(), values.detach(), grad


def _draw_panels(path: Path, gradients: bool) -> Path:
    panels = _panels()
    fig = Figure(figsize=(17, 10), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    kind = "d/dt of each loss (torch.autograd)" if gradients else "each registered loss"
    fig.suptitle(f"robustvae losses: {kind} as a function of the residual t", fontsize=15)
    for ax, panel in zip(axes.flat, panels, strict=True):
        for curve in panel.curves:
            if gradients and not curve.gradient:
                continue
            t, values, grad = _values_and_gradients(curve, panel.t_max)
            y = grad if gradients else values
            ax.plot(t.numpy(), y.numpy(), label=curve.label or None, **curve.style)
        ax.set_ylim(*(panel.grad_ylim if gradients else panel.loss_ylim))
        ax.set_xlim(-panel.t_max, panel.t_max)
        ax.axhline(0, color="0.8", lw=0.8, zorder=0)
        ax.axvline(0, color="0.8", lw=0.8, zorder=0)
        ax.set_title(panel.grad_title if gradients else panel.title, fontsize=11.5)
        ax.set_xlabel("residual t = input − target")
        ax.set_ylabel("∂loss/∂t" if gradients else "loss")
        ax.grid(alpha=0.25)
        legend_loc = "lower right" if gradients else panel.legend_loc
        ax.legend(loc=legend_loc, ncols=panel.legend_cols, fontsize=8.5, framealpha=0.9)
        if panel.note and not gradients:
            ax.text(0.02, 0.02, panel.note, transform=ax.transAxes, fontsize=8, color="0.35")
    fig.savefig(path, dpi=110)
    return path


# ----------------------------------------------------------------------------- distributions


def density(x: Tensor, alpha: float) -> Tensor:
    """p(x | 0, α, 1) = exp(-ρ(x, α, 1)) / Z(α), Barron's general distribution (α ∈ [0, 8])."""
    return torch.exp(-LF.general_nll(x, alpha, 1.0))


def _quadrature_grid(x_max: float, num: int) -> Tensor:
    """x = sinh(u), u uniform: fine steps near 0, geometric steps in the tails."""
    u_max = math.asinh(x_max)
    return torch.sinh(torch.linspace(-u_max, u_max, num, dtype=DTYPE))


def density_integral(alpha: float, x_max: float | None = None, num: int = QUAD_POINTS) -> float:
    """∫ p(x | 0, α, 1) dx over |x| ≤ x_max by the trapezoid rule on a sinh-spaced grid.

    ``x_max`` defaults to 1e3 for α ≥ 0.5 (the rest is < e^-80) and to 1e8 below, where the
    tails are heavy (at α = 0 the mass past 1e8 is ≈ 9e-9). Should be ≈ 1.
    """
    if x_max is None:
        x_max = X_MAX_LIGHT if alpha >= 0.5 else X_MAX_HEAVY
    x = _quadrature_grid(x_max, num)
    return torch.trapezoid(density(x, alpha), x).item()


def _log_z_by_quadrature(alpha: float) -> float:
    """log ∫ exp(-ρ(x, α, 1)) dx, an independent check of the partition table."""
    x_max = X_MAX_LIGHT if alpha >= 0.5 else X_MAX_HEAVY
    x = _quadrature_grid(x_max, QUAD_POINTS)
    return math.log(torch.trapezoid(torch.exp(-LF.general(x, alpha, 1.0)), x).item())


def density_integrals(alphas=DENSITY_ALPHAS) -> dict[float, float]:
    """{α: ∫ p(x | 0, α, 1) dx} for the plotted α."""
    return {alpha: density_integral(alpha) for alpha in alphas}


def _draw_distributions(path: Path, integrals: dict[float, float]) -> Path:
    fig = Figure(figsize=(17, 5.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_lin, ax_log, ax_z = fig.subplots(1, 3, width_ratios=(1.2, 1.2, 1))
    fig.suptitle(
        "Barron's general distribution p(x | 0, α, 1) = exp(−ρ(x, α, 1)) / Z(α)"
        "  (the 'adaptive' loss is −log p)",
        fontsize=14,
    )
    x = torch.linspace(-6, 6, 2401, dtype=DTYPE)
    colours = _colours(len(DENSITY_ALPHAS), "viridis")
    for alpha, colour in zip(DENSITY_ALPHAS, colours, strict=True):
        p = density(x, alpha).numpy()
        label = f"α={alpha:<3g} ∫p = {integrals[alpha]:.9f}"
        ax_lin.plot(x.numpy(), p, color=colour, lw=2, label=label)
        ax_log.plot(x.numpy(), p, color=colour, lw=2, label=f"α={alpha:g}")
    ax_lin.set_title("density (legend: numerical integral over the real line)", fontsize=11.5)
    ax_lin.set_ylim(0, None)
    ax_lin.legend(loc="upper right", fontsize=8.5, prop={"family": "monospace", "size": 8.5})
    ax_log.set_title("log scale: α sets the tails (α=0 Cauchy-like, α=2 normal)", fontsize=11.5)
    ax_log.set_yscale("log")
    ax_log.set_ylim(1e-8, 1.0)
    ax_log.legend(loc="lower center", ncols=2, fontsize=8.5)
    for ax in (ax_lin, ax_log):
        ax.set_xlim(-6, 6)
        ax.set_xlabel("x")
        ax.set_ylabel("p(x | 0, α, 1)")
        ax.grid(alpha=0.25)

    alphas = torch.linspace(0.0, ALPHA_MAX, 1601, dtype=DTYPE)
    ax_z.plot(
        alphas.numpy(), log_partition(alphas).numpy(), color="black", lw=2, label="log_partition(α)"
    )
    exact = {
        0.0: (math.log(math.pi * math.sqrt(2.0)), "Z(0) = π√2"),
        2.0: (0.5 * math.log(2.0 * math.pi), "Z(2) = √(2π)"),
    }
    for alpha, (value, text) in exact.items():
        ax_z.plot(alpha, value, "o", ms=11, mfc="none", mec="tab:red", mew=2)
        ax_z.annotate(
            f"{text}\nlog = {value:.4f}",
            (alpha, value),
            xytext=(14, -34) if alpha == 0 else (14, 8),
            textcoords="offset points",
            fontsize=9,
            color="tab:red",
        )
    ax_z.plot([], [], "o", ms=11, mfc="none", mec="tab:red", mew=2, label="exact values")
    quad = [_log_z_by_quadrature(alpha) for alpha in DENSITY_ALPHAS]
    ax_z.plot(
        DENSITY_ALPHAS, quad, "x", color="tab:blue", ms=8, mew=2, label="trapezoid quadrature"
    )
    ax_z.set_title("log partition function log Z(α) on [0, 8]", fontsize=11.5)
    ax_z.set_xlabel("α")
    ax_z.set_ylabel("log Z(α)")
    ax_z.set_xlim(-0.3, ALPHA_MAX + 0.3)
    ax_z.grid(alpha=0.25)
    ax_z.legend(loc="upper right", fontsize=9)
    fig.savefig(path, dpi=110)
    return path


# ----------------------------------------------------------------------------- entry point


def draw_gallery(out_dir: Path) -> list[Path]:
    """Write losses.png, gradients.png and distributions.png into ``out_dir``; return the paths.

    Prints ∫ p(x | 0, α, 1) dx for each plotted α (each should be ≈ 1).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    integrals = density_integrals()
    for alpha, value in integrals.items():
        x_max = X_MAX_LIGHT if alpha >= 0.5 else X_MAX_HEAVY
        print(f"integral of p(x | 0, alpha={alpha:g}, 1) over |x| <= {x_max:g}: {value:.9f}")
    return [
        _draw_panels(out_dir / "losses.png", gradients=False),
        _draw_panels(out_dir / "gradients.png", gradients=True),
        _draw_distributions(out_dir / "distributions.png", integrals),
    ]
