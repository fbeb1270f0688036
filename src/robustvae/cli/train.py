"""``robustvae train`` and the commands that draw from a trained run (``sample``,
``reconstruct``, ``interpolate``). Every run setting and every kind's setting is a flag; the
settings' precedence lives in ``robustvae.training.config.run_settings``."""

from __future__ import annotations

import argparse
import functools
import sys
import typing
from pathlib import Path

from robustvae.cli.common import PROG, key_values

#: One line per epoch from the trainer, shown at once (also when piped).
PRINT_LINE = functools.partial(print, flush=True)


def _flag_type(owner: type, name: str):
    hint = typing.get_type_hints(owner)[name]
    options = [t for t in typing.get_args(hint) or (hint,) if t is not type(None)]
    return options[0] if options and options[0] in (int, float, str) else str


def add(subparsers: argparse._SubParsersAction) -> None:
    from robustvae.kinds import KINDS

    parser = subparsers.add_parser(
        "train",
        help="train a model of any kind (" + ", ".join(KINDS) + ") with any loss",
        description=TRAIN_DESCRIPTION,
        add_help=False,
    )
    parser.add_argument(
        "-h", "--help", action=KindHelp, nargs=0, help="this kind's flags: train --kind K --help"
    )
    add_setting_flags(parser, list(KINDS))
    parser.set_defaults(handler=run)


TRAIN_DESCRIPTION = (
    "Train a model and write checkpoints, metrics.jsonl, TensorBoard logs and the kind's "
    "pictures into --out. Settings come from the run being resumed, then --config (TOML, keys "
    "as below with underscores), then the flags; the kind's own defaults (its dataset, batch "
    "size and epochs) beneath them all. Model settings belong to a kind: a flag of another "
    "kind is an error. This help shows the flags and defaults of one kind: {kind}."
)


class KindHelp(argparse.Action):
    """``train [--kind K] --help``: the flags and defaults of kind K only (vae if not given)."""

    def __call__(self, parser, namespace, values, option_string=None):
        kind = getattr(namespace, "kind", None) or "vae"
        shown = argparse.ArgumentParser(
            prog=parser.prog, description=TRAIN_DESCRIPTION.format(kind=kind)
        )
        add_setting_flags(shown, [kind], kind_flag=True)
        shown.print_help()
        parser.exit()


def add_setting_flags(
    parser: argparse.ArgumentParser, kinds: list[str], kind_flag: bool = True
) -> None:
    """--out, --config, --resume, and one flag per run setting and per setting of ``kinds``,
    with the defaults of the one kind when ``kinds`` is one (its ``run_defaults`` too).
    ``kind_flag`` False leaves out ``--kind`` (a command for one kind: ``restore train``)."""
    import dataclasses

    from robustvae.kinds import KINDS
    from robustvae.losses import LOSSES
    from robustvae.training import RunConfig
    from robustvae.training.config import setting_fields

    parser.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run directory")
    parser.add_argument("--config", type=Path, help="a TOML file of run settings")
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR's latest")
    owners = {f.name: RunConfig for f in dataclasses.fields(RunConfig)}
    defaults = RunConfig().to_dict()
    if len(kinds) == 1:
        defaults.update(KINDS[kinds[0]].run_defaults, kind=kinds[0])
        for name in KINDS[kinds[0]].run_settings_unused:
            owners.pop(name)
    for kind in kinds:
        for f in dataclasses.fields(KINDS[kind].config):
            owners.setdefault(f.name, KINDS[kind].config)
            if len(kinds) == 1:
                defaults[f.name] = f.default  # this kind's, not the run's default kind's
            defaults.setdefault(f.name, f.default)
    for name, f in setting_fields().items():
        if name not in owners or (name == "kind" and not kind_flag):
            continue
        help_text = f"{f.metadata.get('help', '')} (default: {defaults[name]})"
        if owners[name] is not RunConfig:
            f = next(g for g in dataclasses.fields(owners[name]) if g.name == name)
            help_text = f"{f.metadata.get('help', '')} (default: {defaults[name]})"
        flag = "--" + name.replace("_", "-")
        if name in ("loss", "feature_loss"):
            help_text += "; one of: " + ", ".join(LOSSES)
        if name.endswith("_params"):  # loss_params → --loss-param KEY=VALUE, repeatable
            single = "--" + name[:-1].replace("_", "-")
            parser.add_argument(
                single,
                dest=name,
                action="append",
                metavar="KEY=VALUE",
                help=f"{f.metadata.get('help', '')} (repeatable, e.g. {single} a=100)",
            )
        elif isinstance(defaults[name], bool):
            parser.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            kind = _flag_type(owners[name], name)
            parser.add_argument(flag, dest=name, type=kind, default=None, help=help_text)


def run(args: argparse.Namespace, base: dict | None = None) -> int:
    """Train with the flags of ``args``; ``base``: settings beneath the TOML file and the
    flags of a new run (``restore train``'s kind and dataset)."""
    from robustvae.evaluation import draw_run
    from robustvae.training import RunDir, TrainingDiverged, train
    from robustvae.training.config import run_settings, setting_fields

    flags = {}
    for name in setting_fields():
        value = getattr(args, name, None)
        if value is not None:
            if name.endswith("_params"):
                value = key_values(value, "--" + name[:-1].replace("_", "-"))
            flags[name] = value
    saved = RunDir(args.out).saved_settings() if args.resume else base
    config = run_settings(saved, args.config, flags)
    try:
        result = train(config, args.out, resume=args.resume, report=PRINT_LINE)
    except TrainingDiverged as error:
        print(f"{PROG} train: diverged: {error}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(interrupted(args), file=sys.stderr)
        return 130
    if not result.is_main:
        return 0  # DDP: rank 0 reports and draws
    for path in draw_run(args.out, str(next(result.model.parameters()).device)):
        print(path)
    return 0


def interrupted(args: argparse.Namespace) -> str:
    """The line after Ctrl-C: where the run stands and the command that resumes it."""
    from robustvae.training import RunDir

    run = RunDir(args.out)
    where = f"{PROG} {args.command}: interrupted"
    if not run.has_checkpoint():
        return f"{where} before its first epoch ended: nothing to resume"
    rows = [r for r in run.read_metrics() if isinstance(r, dict)]
    epochs = [r["epoch"] for r in rows if isinstance(r.get("epoch"), int)]
    words = [PROG, args.command, getattr(args, f"{args.command}_command", None)]
    command = " ".join(w for w in words if w) + f" --out {args.out} --resume"
    return f"{where} after epoch {max(epochs, default=0)}: resume with `{command}`"
