"""`make eval-sentiment`: the default model next to plain VADER, in one run, on every labeled set.

The sets are the VADER paper's human-rated sentences in `../shared/data/sentiment/` (id, mean
rating -4..4, text; tab-separated), read from there. `--set FILE` adds a set in the same format
(a held-out set kept outside the repo). Ratings become classes with one mapping for every model:

- `paper` (the primary one): rating >= 0.05 positive, <= -0.05 negative, else neutral, as the VADER
  paper classified; its neutral class is tiny (a rating of exactly 0).
- `half-point`: |rating| < 0.5 neutral, which gives the neutral class real weight.

The default model is not trained on anything, so every set is held out as it stands; the
train-on-two, test-on-the-third protocol applies only to trained models (`--protocol` says so).
Target: +0.05 weighted-F1 over plain VADER on every set. The run prints MET or MISSED per set and
exits 0 either way (it is a report); `--require-target` makes a miss exit 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.classifier.metrics import Scores, f1_scores
from npsloop_classifier.sentiment import Vader, default_model, label_for

CLASSES = ("negative", "neutral", "positive")
DEFAULT_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "sentiment"
MAPPINGS: dict[str, float] = {"paper": 0.05, "half-point": 0.5}
TARGET = 0.05


def load(path: Path) -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []
    for n, line in enumerate(path.read_text("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 3:
            raise SystemExit(f"{path}:{n}: expected 'id<TAB>rating<TAB>text'")
        rows.append(("\t".join(parts[2:]).strip(), float(parts[1])))
    return rows


def rating_class(rating: float, cut: float) -> str:
    return "positive" if rating >= cut else "negative" if rating <= -cut else "neutral"


def fmt(s: Scores) -> str:
    per = " ".join(f"{c[:3]} {s.per_class[c]:.3f}" for c in CLASSES)
    return f"weighted-F1 {s.weighted:.3f}  macro-F1 {s.macro:.3f}  ({per})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DIR, help="folder of *_GroundTruth.txt sets")
    ap.add_argument("--set", type=Path, action="append", default=[], help="another set (same format)")
    ap.add_argument("--require-target", action="store_true", help="exit 1 unless the target is met on every set")
    args = ap.parse_args(argv)
    files = sorted(args.data.glob("*_GroundTruth.txt")) + list(args.set)
    if not files:
        raise SystemExit(f"no *_GroundTruth.txt in {args.data}")
    default = default_model()
    models: dict[str, Callable[[str], float]] = {"vader": Vader().compound, "default": default.compound}
    print(f"default model: {default.name}; trained: no (every set below is held out from it)")
    missed = []
    for path in files:
        rows = load(path)
        texts = [t for t, _ in rows]
        compounds: dict[str, list[float]] = {}
        for name, model in models.items():
            t0 = time.process_time()
            compounds[name] = [model(t) for t in texts]
            us = (time.process_time() - t0) / len(texts) * 1e6
            print(f"  {path.name}: {name} {us:.0f} us/comment")
        print(f"\n== {path.name} ({len(rows)} sentences)")
        for mapping, cut in MAPPINGS.items():
            truth = [rating_class(r, cut) for _, r in rows]
            scores = {n: f1_scores(truth, [label_for(c).value for c in cs], CLASSES) for n, cs in compounds.items()}
            gain = scores["default"].weighted - scores["vader"].weighted
            verdict = "MET" if gain >= TARGET else "MISSED"
            print(f"  mapping {mapping} (|rating| < {cut} neutral; support {scores['vader'].support})")
            for name, s in scores.items():
                print(f"    {name:8s} {fmt(s)}")
            print(f"    gain {gain:+.3f} weighted-F1: target +{TARGET} {verdict}")
            if mapping == "paper" and gain < TARGET:
                missed.append(path.name)
    print(f"\ntarget (+{TARGET} weighted-F1, paper mapping) missed on: {', '.join(missed) or 'none'}")
    return 1 if (missed and args.require_target) else 0


if __name__ == "__main__":
    sys.exit(main())
