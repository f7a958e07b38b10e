"""The development suite: where it is, what each dataset holds, and its generated hard variants.

    python -m tests.benchmarks.suite_data [--force]     # (re)generate the hard variants

The suite (research-use data, never copied into the repository) is found in $SEGLOOP_SUITE,
else ``../shared/datasets`` beside the checkout. Each dataset folder has ``images/``, ``masks/``
and ``SOURCE.txt``. The hard variants are generated from it, deterministically (seeded), into
``$SEGLOOP_SUITE_OUT`` (default ``tests/benchmarks/out/suite``, git-ignored):

* ``dsb2018_tiles``: 96-128 px tiles cut from dsb2018_nuclei (about a fifth of them empty: 30 % are searched for, not every image has one);
* ``ph2_tiles``: 96-128 px tiles cut from ph2_skin_lesion at half resolution (a fifth empty);
* ``ph2_small_lowcontrast``: each PH2 image at 30 % contrast, shrunk into a 256x256 frame of
  noisy skin colour so the lesion covers < 10 % of the image (median ~2 %).

Test split: the last N sorted stems, N = 20 % of the set, at most 80 (``test_stems``). One
exception, msrc_v2: its stems are ``<category row>_<n>_s``, so the last sorted stems are whole
rows 8 and 9 and part of 7 (all 30 bicycle images among them: bicycle would be in the test set
and never in the pool). There the split is stratified by row: the last stems of each row,
N in total, each row's share proportional to its size.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
SUITE_DEFAULT = Path(__file__).resolve().parents[3] / "shared" / "datasets"


@dataclass(frozen=True)
class Dataset:
    name: str
    num_classes: int          # 2 = binary (masks 0/255 or 0/1)
    ignore_index: int | None  # mask value that is void (never trained on, never scored)
    source: str = ""          # generated variants: the dataset they are cut from
    exclude_classes: tuple[int, ...] = ()  # left out of the reported mIoU (MSRC-21 drops horse, mountain)
    split_groups: str = ""    # "": test = last sorted stems; "prefix": stratified by stem.split("_")[0]

    @property
    def binary(self) -> bool:
        return self.num_classes == 2


DATASETS = (
    Dataset("weizmann_horse", 2, None),
    Dataset("pennfudan_ped", 2, None),
    Dataset("ph2_skin_lesion", 2, None),
    Dataset("dsb2018_nuclei", 2, None),
    Dataset("msrc_v2", 23, 255, exclude_classes=(4, 7), split_groups="prefix"),
    Dataset("ccp_clothing", 59, None),
)
VARIANTS = (
    Dataset("dsb2018_tiles", 2, None, "dsb2018_nuclei"),
    Dataset("ph2_tiles", 2, None, "ph2_skin_lesion"),
    Dataset("ph2_small_lowcontrast", 2, None, "ph2_skin_lesion"),
)
ALL = DATASETS + VARIANTS
BY_NAME = {d.name: d for d in ALL}


def suite_dir() -> Path | None:
    env = os.environ.get("SEGLOOP_SUITE")
    for cand in ([Path(env)] if env else []) + [SUITE_DEFAULT]:
        if (cand / "weizmann_horse" / "images").is_dir():
            return cand
    return None


def variants_dir() -> Path:
    return Path(os.environ.get("SEGLOOP_SUITE_OUT", HERE / "out" / "suite"))


def dataset_dir(name: str) -> Path | None:
    """images/ + masks/ folder of a suite dataset or generated variant (generated on demand)."""
    d = BY_NAME[name]
    if d.source:
        out = variants_dir() / name
        if not (out / "DONE").exists():
            generate(name)
        return out
    root = suite_dir()
    return None if root is None else root / name


def test_count(n: int) -> int:
    """The test split size: 20 % of the set, at most 80."""
    return max(1, min(80, round(0.2 * n)))


def test_stems(name: str, stems: list[str]) -> list[str]:
    """The test stems of dataset ``name`` among ``stems`` (see the module docstring)."""
    stems = sorted(stems)
    n_test = test_count(len(stems))
    if not BY_NAME[name].split_groups:
        return stems[-n_test:]
    groups: dict[str, list[str]] = {}
    for s in stems:
        groups.setdefault(s.split("_")[0], []).append(s)
    exact = {g: n_test * len(v) / len(stems) for g, v in groups.items()}
    quota = {g: int(q) for g, q in exact.items()}
    for g in sorted(exact, key=lambda g: exact[g] - quota[g], reverse=True)[:n_test - sum(quota.values())]:
        quota[g] += 1  # largest remainders
    natural = lambda s: [int(t) if t.isdigit() else t for t in s.split("_")]  # noqa: E731
    return sorted(s for g, v in groups.items() for s in sorted(v, key=natural)[len(v) - quota[g]:])


# --------------------------------------------------------------------------- generation
def _read(path: Path, flags: int) -> np.ndarray:
    a = cv2.imdecode(np.fromfile(str(path), np.uint8), flags)
    if a is None:
        raise OSError(f"{path}: cannot decode")
    return a


def _pairs(name: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    root = suite_dir()
    if root is None:
        raise FileNotFoundError("development suite not found ($SEGLOOP_SUITE or ../shared/datasets)")
    out = []
    for m in sorted((root / name / "masks").glob("*.png")):
        imgs = [p for p in (root / name / "images").glob(m.stem + ".*")]
        if imgs:
            image = _read(imgs[0], cv2.IMREAD_COLOR)
            mask = (_read(m, cv2.IMREAD_GRAYSCALE) > 0).astype(np.uint8) * 255
            out.append((m.stem, image, mask))
    return out


def _tiles(pairs, rng: np.random.Generator, per_image: int, empty_share: float = 0.3,
           shrink: float = 1.0):
    """Random 96-128 px tiles; about ``empty_share`` of the chosen tiles hold no foreground."""
    for stem, image, mask in pairs:
        if shrink != 1.0:
            size = (max(1, round(image.shape[1] * shrink)), max(1, round(image.shape[0] * shrink)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            mask = ((cv2.resize(mask, size, interpolation=cv2.INTER_AREA)) >= 128).astype(np.uint8) * 255
        h, w = mask.shape
        for made in range(per_image):
            want_empty = rng.random() < empty_share  # decided per tile, then searched for
            for attempt in range(200):
                t = int(rng.integers(96, 129))
                if h < t or w < t:
                    break
                y, x = int(rng.integers(0, h - t + 1)), int(rng.integers(0, w - t + 1))
                m = mask[y:y + t, x:x + t]
                if bool(m.any()) != want_empty or attempt == 199:
                    yield f"{stem[:16]}_{made}", image[y:y + t, x:x + t], m
                    break


def _small_lowcontrast(pairs, rng: np.random.Generator):
    for stem, image, mask in pairs:
        f = 0.3
        img = image.astype(np.float32)
        mean = img.reshape(-1, 3).mean(0)
        img = mean + (img - mean) * f                       # contrast reduced to 30 %
        frame = 256
        long_side = int(rng.integers(80, 110))               # the whole dermoscopy field ~ 90 px
        s = long_side / max(mask.shape)
        size = (max(1, round(mask.shape[1] * s)), max(1, round(mask.shape[0] * s)))
        small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        small_m = (cv2.resize(mask, size, interpolation=cv2.INTER_AREA) >= 128).astype(np.uint8) * 255
        skin = np.median(img[:, :, :].reshape(-1, 3), axis=0)
        canvas = skin + rng.normal(0, 4, (frame, frame, 3)).astype(np.float32)
        canvas = cv2.GaussianBlur(canvas, (0, 0), 2.0)
        y = int(rng.integers(0, frame - size[1] + 1))
        x = int(rng.integers(0, frame - size[0] + 1))
        # feather the pasted field into the frame so its edge is not a free cue
        alpha = np.zeros((size[1], size[0]), np.float32)
        cv2.ellipse(alpha, (size[0] // 2, size[1] // 2), (size[0] // 2, size[1] // 2), 0, 0, 360, 1.0, -1)
        alpha = cv2.GaussianBlur(alpha, (0, 0), 4.0)[..., None]
        region = canvas[y:y + size[1], x:x + size[0]]
        canvas[y:y + size[1], x:x + size[0]] = alpha * small + (1 - alpha) * region
        m = np.zeros((frame, frame), np.uint8)
        m[y:y + size[1], x:x + size[0]] = small_m * (alpha[..., 0] > 0.5)
        yield stem, np.clip(canvas, 0, 255).astype(np.uint8), m


def generate(name: str, force: bool = False) -> Path:
    d = BY_NAME[name]
    out = variants_dir() / name
    if (out / "DONE").exists() and not force:
        return out
    rng = np.random.default_rng(0)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    pairs = _pairs(d.source)
    if name == "dsb2018_tiles":
        items = _tiles(pairs, rng, per_image=1)
    elif name == "ph2_tiles":
        items = _tiles(pairs, rng, per_image=2, shrink=0.5)
    elif name == "ph2_small_lowcontrast":
        items = _small_lowcontrast(pairs, rng)
    else:
        raise ValueError(name)
    n = 0
    for stem, image, mask in items:
        cv2.imwrite(str(out / "images" / f"{stem}.png"), image)
        cv2.imwrite(str(out / "masks" / f"{stem}.png"), mask)
        n += 1
    (out / "DONE").write_text(f"{n} pairs generated from {d.source}\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    for v in VARIANTS:
        out = generate(v.name, args.force)
        masks = sorted((out / "masks").glob("*.png"))
        empty = sum(1 for m in masks if not _read(m, cv2.IMREAD_GRAYSCALE).any())
        fg = np.mean([(_read(m, cv2.IMREAD_GRAYSCALE) > 0).mean() for m in masks])
        print(f"{v.name}: {len(masks)} pairs in {out}, {empty} empty ({empty / len(masks):.0%}), "
              f"mean foreground {fg:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
