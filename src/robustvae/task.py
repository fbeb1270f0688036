"""The interface between a model kind and the trainer.

A ``Task`` is an ``nn.Module`` holding everything a kind trains (nets, learned loss
parameters). The trainer drives it through this interface alone and knows nothing of latents,
KL terms, decoders or discriminators:

- ``parameter_groups()``: named groups, each with its own optimizer settings. The default is
  one group, ``"model"``, of every parameter, with the run's optimizer settings.
- ``batch_transform(batch, generator)``: a per-step random transform of a batch (crops,
  synthetic corruption), drawing only from ``generator``, which the trainer seeds from the
  run's seed, the epoch, the step and the rank: a resumed run sees the same batches.
- ``training_step(batch, updates)``: computes the loss terms and updates the groups through
  ``updates`` (``Updates``: ``backward``, ``apply``, ``step``, ``skip``). The default:
  ``loss_terms``, then one update of the ``"model"`` group down the ``"loss"`` term.
- ``loss_terms(batch)``: a dict of scalar tensors; the trainer averages them over the test
  split after every epoch (in eval mode, without gradients).
- ``best_metric``: the test term whose lowest value selects ``best.safetensors`` (None: the
  latest epoch is the best, for models whose losses rank no epochs, such as GANs).
- ``pictures(batch)``: named image grids (N×C×H×W in [0, 1]) for TensorBoard each epoch.
- ``set_loss_param(name, value)``: set a fixed parameter of the task's loss (the trainer's
  annealing schedule calls it before every epoch; ValueError if the loss has no such fixed
  parameter). The default refuses: a kind opts in.
- ``end_of_epoch(epoch, metrics)``: a hook after every epoch, with the metrics.jsonl rows so
  far (``raise TrainingStopped(reason)`` ends an unstable run cleanly, before the epoch's
  checkpoint is written). The default warns when an adaptive loss's α sits at a bound.
- ``epoch_statistics()``: numbers about the learned state, logged per epoch in metrics.jsonl
  (``statistics``) and TensorBoard. The default: the median, min and max of an adaptive
  loss's α and c, when the task holds one (``adaptive_loss()``).

Batches are dicts of tensors whose first dimension is the batch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = ["Group", "Task", "TrainingStopped", "Updates"]

OPTIMIZERS = ("adam", "rmsprop", "sgd")


class TrainingStopped(RuntimeError):
    """Raised by a task's ``end_of_epoch`` to end an unstable run; the trainer reports the
    reason with the last good checkpoint."""


@dataclass
class Group:
    """A named parameter group and its optimizer. ``lr=None`` takes the run's ``lr``; every
    group follows the run's learning-rate schedule (as a factor of its own ``lr``)."""

    params: list[nn.Parameter]
    optimizer: str = "adam"  # adam | rmsprop | sgd
    lr: float | None = None
    options: dict = field(default_factory=dict)  # e.g. betas, alpha, momentum, weight_decay

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        self.params = [p for p in self.params if p.requires_grad]

    def build(self, run_lr: float) -> torch.optim.Optimizer:
        cls = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}
        return cls[self.optimizer](self.params, lr=self.lr or run_lr, **self.options)


class Updates:
    """What a training step may do to the weights, one parameter group at a time.

    - ``backward(group, loss)``: the gradient of ``loss`` with respect to that group's
      parameters only (other groups' gradients are left alone), reduced across data-parallel
      ranks;
    - ``apply(group)``: that group's optimizer step;
    - ``step(group, loss)``: both at once.

    Computing every group's gradient from one forward pass and applying them afterwards (as
    Larsen et al.'s VAE-GAN does) avoids backpropagating through weights an earlier update has
    already changed. ``skip(group)`` counts an update a balancing rule left out.

    Per epoch, ``health()`` gives each group's update share (updates applied per step) and,
    for several groups, the mean norm of the gradients each applied; the norms are summed on
    the device, so reading them costs no synchronisation per step.

    The trainer makes one ``Updates`` per run; ``check(terms, log)`` (set by the trainer)
    receives the terms passed to the first ``backward`` of each training step, before any
    weight changes, and stops a run whose terms are not finite. Those terms are also the
    step's logged terms (``log`` True); a first ``backward`` without terms has its loss checked
    and the terms ``training_step`` returns are logged.
    """

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer], reduce, check):
        self.optimizers = optimizers
        self.track_norms = len(optimizers) > 1  # one group always updates: nothing to watch
        self._reduce = reduce
        self._check = check
        self.checked: dict[str, Tensor] | None = None
        self.logged = False
        self.skipped: dict[str, int] = dict.fromkeys(optimizers, 0)
        self.applied: dict[str, int] = dict.fromkeys(optimizers, 0)
        self._norms: dict[str, Tensor] = {}
        self._pending_norm: dict[str, Tensor] = {}
        self.steps = 0

    def begin(self) -> None:
        """A training step starts."""
        self.checked, self.logged = None, False
        self.steps += 1

    def reset_epoch(self) -> None:
        """Zero the per-epoch counts and norm sums."""
        self.steps = 0
        for counts in (self.skipped, self.applied):
            for name in counts:
                counts[name] = 0
        self._norms, self._pending_norm = {}, {}

    def health(self) -> dict[str, dict[str, float]]:
        """This epoch so far: ``update_share`` (updates applied per step, per group) and
        ``grad_norm`` (the mean L2 norm of each group's applied gradients; groups that never
        updated are left out)."""
        steps = max(self.steps, 1)
        share = {name: self.applied[name] / steps for name in self.optimizers}
        norms = {
            name: total.item() / self.applied[name]
            for name, total in self._norms.items()
            if self.applied[name]
        }
        return {"update_share": share, "grad_norm": norms}

    def _optimizer(self, group: str) -> torch.optim.Optimizer:
        if group not in self.optimizers:
            raise KeyError(f"no parameter group {group!r}; the groups are {list(self.optimizers)}")
        return self.optimizers[group]

    def backward(
        self,
        group: str,
        loss: Tensor,
        terms: dict[str, Tensor] | None = None,
        retain_graph: bool = False,
    ) -> None:
        """Set ``group``'s gradients to those of ``loss``. ``terms`` (the step's loss terms, on
        its first call) are checked for NaN first."""
        optimizer = self._optimizer(group)
        if self.checked is None:
            self.checked = terms if terms is not None else {group: loss}
            self.logged = terms is not None
            self._check(self.checked, self.logged)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss, inputs=params, retain_graph=retain_graph)
        self._reduce(params)
        grads = [p.grad for p in params if p.grad is not None] if self.track_norms else []
        if grads:
            with torch.no_grad():
                norms = torch._foreach_norm(grads)
                self._pending_norm[group] = torch.linalg.vector_norm(torch.stack(norms))

    def apply(self, group: str) -> None:
        """Take ``group``'s optimizer step with the gradients ``backward`` left."""
        self._optimizer(group).step()
        self.applied[group] += 1
        norm = self._pending_norm.pop(group, None)
        if norm is not None:
            total = self._norms.get(group)
            self._norms[group] = norm.detach().double() if total is None else total + norm

    def step(
        self,
        group: str,
        loss: Tensor,
        terms: dict[str, Tensor] | None = None,
        retain_graph: bool = False,
    ) -> None:
        """``backward`` then ``apply``: one update of ``group`` down the gradient of ``loss``."""
        self.backward(group, loss, terms, retain_graph)
        self.apply(group)

    def skip(self, group: str) -> None:
        """Count an update a balancing rule left out (logged per epoch)."""
        self._optimizer(group)
        self.skipped[group] += 1


class Task(nn.Module):
    """Base class of everything the trainer trains; see the module docstring."""

    best_metric: str | None = "loss"
    #: Terms averaged over an epoch or the test data with another term's value as each
    #: batch's weight, e.g. ``{"gt_epe": "gt_known"}``: an error over the known pixels,
    #: weighed by the share of pixels known (a batch with none counts for nothing).
    term_weights: dict[str, str] = {}

    def parameter_groups(self) -> dict[str, Group]:
        return {"model": Group(list(self.parameters()))}

    has_batch_transform = False  # True in tasks that override batch_transform

    def batch_transform(self, batch: dict[str, Tensor], generator: torch.Generator):
        return batch

    def loss_terms(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    def training_step(self, batch: dict[str, Tensor], updates: Updates) -> dict[str, Tensor]:
        terms = self.loss_terms(batch)
        updates.step("model", terms["loss"], terms)
        return terms

    def pictures(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {}

    def begin_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the trainer before each epoch (0-based) of a run of ``epochs``: where a
        task sets what its own schedule gives for the epoch (e.g. the adversarial kinds'
        instance noise)."""

    def set_loss_param(self, name: str, value: float) -> None:
        raise ValueError(f"{type(self).__name__} has no loss parameter that can be annealed")

    def adaptive_loss(self) -> nn.Module | None:
        """The ``AdaptiveLoss`` the task trains (its learned α and c), or None."""
        from robustvae.losses.adaptive import find_adaptive

        return find_adaptive(self)

    def epoch_statistics(self) -> dict[str, float]:
        adaptive = self.adaptive_loss()
        return {} if adaptive is None else adaptive.statistics()

    def end_of_epoch(self, epoch: int, metrics: list[dict]) -> None:
        adaptive = self.adaptive_loss()
        if adaptive is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                adaptive.warn_if_at_bounds()
