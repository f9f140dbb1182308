"""Fits the calibrated sentiment model (`Calibrated`, NPSLOOP_SENTIMENT_MODEL=calibrated): a ridge
regression of the human mean rating (-4..4, scaled to -1..1) on `Ensemble.features` (VADER with
the retail lexicon, Pattern), solved exactly (normal equations): a re-run gives the same weights.

    uv run --frozen python -m bench.classifier.train_sentiment     # all three shared sets -> the shipped weights

`make eval-sentiment` scores it held out: for each set, weights fitted on the other two.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from npsloop_classifier.sentiment import Ensemble

RIDGE = 1.0  # on ~15,000 sentences: barely more than least squares, keeps the solve well-conditioned
OUT = Path(__file__).resolve().parents[2] / "services/classifier/src/npsloop_classifier/data/sentiment_calibration.json"


def fit(features: Sequence[dict[str, float]], targets: Sequence[float], ridge: float = RIDGE) -> dict[str, float]:
    """Weights w minimising sum (w.x - y)^2 + ridge * |w without bias|^2."""
    names = list(features[0])
    n = len(names)
    a = [[0.0] * n for _ in range(n)]
    b = [0.0] * n
    for x, y in zip(features, targets, strict=True):
        v = [x[k] for k in names]
        for i in range(n):
            b[i] += v[i] * y
            row = a[i]
            for j in range(n):
                row[j] += v[i] * v[j]
    for i, name in enumerate(names):
        if name != "bias":
            a[i][i] += ridge
    return dict(zip(names, _solve(a, b), strict=True))


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (a is small: one row per feature)."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(n):
            if r != col and m[r][col]:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col], strict=True)]
    return [m[i][n] / m[i][i] for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    from bench.classifier.eval_sentiment import DEFAULT_DIR, load

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    files = sorted(args.data.glob("*_GroundTruth.txt"))
    model = Ensemble()
    features, targets = [], []
    for path in files:
        for text, rating in load(path):
            features.append(model.features(text))
            targets.append(rating / 4)
    weights = fit(features, targets)
    payload = {"version": "1", "trained_on": [p.name for p in files], "ridge": RIDGE, "weights": weights}
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"fitted on {len(targets)} sentences of {len(files)} sets -> {args.out}")
    print(json.dumps(weights, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
