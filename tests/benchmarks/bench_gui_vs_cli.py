"""GUI fine-tune path vs ``segloop-cli train`` on the same images and budget (multi-class).

Run: ``make bench-gui-vs-cli`` (not a timed test; ~25 min on 2 cores), i.e.
``python -m tests.benchmarks.bench_gui_vs_cli [--datasets msrc_v2,ccp_clothing] [--seeds 0,1,2]``.

For each suite dataset (multi-class: msrc_v2 with 255 = void, ccp_clothing) the same ``--n``
images (a seeded sample of the pool; the test split is suite_data.test_stems, never trained on)
are trained on twice per seed:

- **GUI path**: a project holding the images with their ground truth saved as the user's
  corrections (segcore.simulate's project builder, classes set as the Classes panel sets them),
  then ``segcore.loop.finetune(project, TrainConfig(seed=s))``: the function the Training dock's
  worker thread (app/training/worker.py) calls with the Advanced panel's settings (defaults);
- **CLI**: ``python -m segcore.cli train --images --masks --classes K [--ignore-index 255]
  --time-budget B --seed s`` in a subprocess, with B = the GUI click's budget for the same
  images (``TrainConfig.budget_for``; the CLI spends all of it training, the GUI click also
  loads, scores and saves inside it, so the comparison does not favour the GUI).

Both checkpoints are scored the same way (segcore.simulate.evaluate_test, the suite's mIoU:
MSRC-21 drops classes 4 and 7). Rows go to tests/benchmarks/out/gui_vs_cli.jsonl; the report
prints per seed and the mean difference, and records the table in results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .bench_suite import _metric as suite_metric
from .suite_data import BY_NAME, dataset_dir, test_stems

OUT = Path(__file__).resolve().parent / "out" / ("gui_vs_cli_quick.jsonl" if "--quick" in sys.argv[1:]
                                                 else "gui_vs_cli.jsonl")
ROOT = Path(__file__).resolve().parents[2]


def _recipe(cfg: dict) -> str:
    """What a run trained with, from its stored (resolved) train_config."""
    return f"{cfg['mode']}, {cfg['class_balance']} weights, lr {cfg['lr_head']:g}"


def _link_folder(stems: list[str], paths: dict[str, Path], folder: Path) -> None:
    folder.mkdir(parents=True)
    for s in stems:
        os.symlink(paths[s].resolve(), folder / paths[s].name)


def run_dataset(name: str, n: int, seeds: list[int], sample_seed: int,
                budget_s: float | None = None) -> list[dict]:
    from segcore import simulate as sim
    from segcore.loop import finetune
    from segcore.training import TrainConfig
    from segcore.versions import ModelStore, load_checkpoint, read_meta
    d = BY_NAME[name]
    root = dataset_dir(name)
    if root is None:
        print(f"{name}: suite not found; skipped")
        return []
    images, masks = sim.matched_stems(root / "images", root / "masks")
    test = test_stems(name, list(images))
    pool = sorted(set(images) - set(test))
    chosen = sorted(str(s) for s in np.random.default_rng(sample_seed).permutation(pool)[:n])
    cache: dict = {}
    rows = []
    for seed in seeds:
        config = TrainConfig(seed=seed) if budget_s is None else TrainConfig(seed=seed, time_budget_s=budget_s)
        with tempfile.TemporaryDirectory(prefix="segloop-gvc-") as tmp:
            tmp_p = Path(tmp)
            (tmp_p / "project").mkdir()
            project = sim._project_with(chosen, images, masks, tmp_p / "project",
                                        num_classes=d.num_classes, ignore_index=d.ignore_index)
            try:
                n_train = len(project.training_split()[0])
                budget = config.budget_for(n_train)
                t0 = time.perf_counter()
                result = finetune(project, config)
                gui_s = time.perf_counter() - t0
                store = ModelStore(project)
                gui_model = store.load(result.version_id)
                gui_cfg = read_meta(store.path(result.version_id))["train_config"]
            finally:
                project.close()
            _link_folder(chosen, images, tmp_p / "images")
            _link_folder(chosen, masks, tmp_p / "masks")
            ckpt = tmp_p / "cli.pt"
            cmd = [sys.executable, "-m", "segcore.cli", "train", "--images", str(tmp_p / "images"),
                   "--masks", str(tmp_p / "masks"), "--classes", str(d.num_classes),
                   "--time-budget", f"{budget:.1f}", "--seed", str(seed), "--out", str(ckpt)]
            if d.ignore_index is not None:
                cmd += ["--ignore-index", str(d.ignore_index)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            cli_s = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"{name}: CLI train failed ({proc.returncode}): {proc.stderr[-2000:]}")
            cli_model, cli_meta = load_checkpoint(ckpt)
        row = {"dataset": name, "seed": seed, "n_images": len(chosen), "n_train_gui": n_train,
               "n_train_cli": len(cli_meta["data"]["train"]), "budget_s": budget,
               "recipe_gui": _recipe(gui_cfg), "recipe_cli": _recipe(cli_meta["train_config"]),
               "time": time.strftime("%Y-%m-%d %H:%M:%S")}
        for label, model, secs in (("gui", gui_model, gui_s), ("cli", cli_model, cli_s)):
            scores = sim.evaluate_test(sim.make_predictor(model), images, masks, test, None, cache,
                                       d.num_classes, d.ignore_index)
            row[f"{label}_miou"] = suite_metric({"dataset": name, **scores})  # the suite's mIoU rule
            row[f"{label}_pixel_miou"] = scores["miou"]
            row[f"{label}_seconds"] = secs
            row[f"{label}_preset"] = (getattr(model, "meta", None) or {}).get("preset")
        row["diff"] = row["gui_miou"] - row["cli_miou"]
        print(f"  {name} seed {seed}: GUI {row['gui_miou']:.3f} ({gui_s:.0f} s)  CLI {row['cli_miou']:.3f} "
              f"({cli_s:.0f} s, budget {budget:.0f} s)  diff {row['diff']:+.3f}", flush=True)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        with open(OUT, "a") as fh:
            fh.write(json.dumps({k: v for k, v in row.items() if not k.endswith("_preset")}) + "\n")
        rows.append(row)
    return rows


def report(rows: list[dict]) -> None:
    from .common import record, report as md
    table = []
    for r in rows:
        table.append([r["dataset"], r["seed"], r["recipe_gui"], r["recipe_cli"], r["n_train_gui"],
                      r["n_train_cli"], r["budget_s"],
                      r["gui_miou"], r["cli_miou"], r["diff"], r["gui_seconds"], r["cli_seconds"]])
    for name in sorted({r["dataset"] for r in rows}):
        rs = [r for r in rows if r["dataset"] == name]
        table.append([f"**{name} mean**", len(rs), "", "", None, None, None,
                      float(np.mean([r["gui_miou"] for r in rs])), float(np.mean([r["cli_miou"] for r in rs])),
                      float(np.mean([r["diff"] for r in rs])), None, None])
    record("gui_vs_cli", {"rows": rows})
    md("GUI fine-tune path vs CLI train, same 50 images and budget (suite mIoU on the test split)",
       ["dataset", "seed", "GUI recipe", "CLI recipe", "GUI train imgs", "CLI train imgs", "budget s", "GUI mIoU", "CLI mIoU",
        "GUI − CLI", "GUI s", "CLI s"], table)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="msrc_v2,ccp_clothing")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--n", type=int, default=50, help="images trained on (a sample of the pool)")
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: rows and tables go to the *_quick files (git-ignored)")
    p.add_argument("--time-budget", type=float, default=None,
                   help="the click's base budget (default: the app's); a smoke run uses a few seconds")
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.datasets.split(","):
        rows += run_dataset(name, args.n, [int(s) for s in args.seeds.split(",")], args.sample_seed,
                            args.time_budget)
    if rows:
        report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
