"""Shared plumbing for the benchmark scripts: timing, results.json, Markdown tables.

Every benchmark prints a table of medians and ratios against a baseline measured in the
same run, and merges its numbers into ``tests/benchmarks/results.json`` under its own key
(one object per benchmark, stable keys) and ``tests/benchmarks/results.md``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

HERE = Path(__file__).resolve().parent
# A --quick run is a smoke run: it writes results_quick.* (git-ignored) so it never overwrites
# the full run's committed tables.
QUICK = "--quick" in sys.argv[1:]
RESULTS_JSON = HERE / ("results_quick.json" if QUICK else "results.json")
RESULTS_MD = HERE / ("results_quick.md" if QUICK else "results.md")
WEIZMANN = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "weizmann_horse"


def weizmann_dir() -> Path | None:
    """The Weizmann Horse folder beside the checkout (``../shared``), or $SEGLOOP_WEIZMANN."""
    env = os.environ.get("SEGLOOP_WEIZMANN")
    for cand in ([Path(env)] if env else []) + [WEIZMANN]:
        if (cand / "images").is_dir() and (cand / "masks").is_dir():
            return cand
    return None


def machine() -> dict[str, Any]:
    import torch

    return {
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def rss_mb() -> float:
    """This process's resident set size now, in MB (Linux /proc)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def time_ms(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> list[float]:
    """Wall times of ``fn()`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def median(xs: Iterable[float]) -> float:
    return float(statistics.median(list(xs)))


def percentile(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(round(q / 100.0 * (len(s) - 1)))))
    return float(s[k])


def record(key: str, value: Any) -> None:
    """Merge ``{key: value}`` into results.json (read, update, atomic replace)."""
    data: dict[str, Any] = {}
    if RESULTS_JSON.exists():
        try:
            data = json.loads(RESULTS_JSON.read_text())
        except json.JSONDecodeError:
            data = {}
    data[key] = value
    data["machine"] = machine()
    tmp = RESULTS_JSON.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, RESULTS_JSON)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table; floats get 3 significant decimals."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def report(title: str, headers: Sequence[str], rows: list[Sequence[Any]]) -> str:
    """Print a titled table and append it to results.md's section for this title."""
    text = f"### {title}\n\n{table(headers, rows)}\n"
    print(text, flush=True)
    sections: dict[str, str] = {}
    if RESULTS_MD.exists():
        current = None
        for line in RESULTS_MD.read_text().splitlines(keepends=True):
            if line.startswith("### "):
                current = line[4:].strip()
                sections[current] = ""
            if current is not None:
                sections[current] += line
    sections[title] = text + "\n"
    RESULTS_MD.write_text("".join(sections[k] for k in sections))
    return text


OUT = HERE / "out"


def weizmann_pairs(stems: Sequence[str] | None = None) -> tuple[list[str], Path]:
    """Sorted Weizmann stems (or the given ones) and the dataset folder; raises if absent."""
    root = weizmann_dir()
    if root is None:
        raise FileNotFoundError("Weizmann Horse not found beside the checkout (../shared/datasets)")
    all_stems = sorted(p.stem for p in (root / "images").glob("*.jpg"))
    return (list(stems) if stems is not None else all_stems), root


def bench_checkpoint(budget_s: float = 60.0, quick: bool = False) -> Path:
    """A real fine-tuned model for the inference and CRF benchmarks, trained once and reused.

    The app's default model fine-tuned with the app's default recipe on the first 20 sorted
    Weizmann images (never the last 80, which are the test set) within ``budget_s`` seconds;
    without Weizmann, on the synthetic demo. Saved to tests/benchmarks/out/bench_model.pt.
    ``quick`` (bench-quick): reuse that model if it exists, else train one for 20 s
    (bench_model_quick.pt) so the quick subset stays near two minutes on a clean clone.
    """
    from segcore import models
    from segcore.training import TrainConfig, Trainer
    from segcore.versions import save_checkpoint

    path = OUT / "bench_model.pt"
    if path.exists():
        return path
    if quick:
        path, budget_s = OUT / "bench_model_quick.pt", min(budget_s, 20.0)
        if path.exists():
            return path
    OUT.mkdir(parents=True, exist_ok=True)
    root = weizmann_dir()
    if root is not None:
        stems, _ = weizmann_pairs()
        pairs = [(root / "images" / f"{s}.jpg", root / "masks" / f"{s}.png") for s in stems[:20]]
    else:
        from segcore.demo import generate_demo_project

        demo = generate_demo_project(OUT / "demo", n_images=20, size=(240, 320), seed=3)
        pairs = [(p, demo / "ground_truth" / p.name) for p in sorted(demo.glob("*.png"))]
    model = models.build(models.DEFAULT_MODEL, num_classes=2, pretrained=True)
    cfg = TrainConfig(time_budget_s=budget_s)
    result = Trainer(model, cfg).fit(pairs, [])
    save_checkpoint(path, result.model, {"note": "benchmark model", "train_config": cfg.to_dict()})
    return path
