"""`make eval-themes`: the taxonomy on hand-written labeled comments: bench/classifier/data/themes.tsv
(written with the taxonomy) and themes_after.tsv (written after it and never used to tune: the
fair estimate).

Prints, per theme and in total, precision, recall and F1 of detection, and for the themes found
correctly, how often the clause sentiment matches the label (+ positive, - negative, = neutral).
`--taxonomy FILE` scores another taxonomy file.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.classifier.metrics import binary_f1, f1_scores
from npsloop_classifier.handlers import Classifier
from npsloop_classifier.sentiment import Vader
from npsloop_classifier.taxonomy import load_taxonomy

DATA = Path(__file__).with_name("data") / "themes.tsv"
LATER = Path(__file__).with_name("data") / "themes_after.tsv"
SIGN = {"+": "positive", "-": "negative", "=": "neutral"}


@dataclass(frozen=True)
class Example:
    text: str
    themes: dict[str, str]


def load(path: Path = DATA) -> list[Example]:
    out = []
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        labels, _, text = line.partition("\t")
        themes: dict[str, str] = {}
        for item in labels.split():
            if item == ".":
                continue
            if item[-1] not in SIGN:
                raise SystemExit(f"{path}:{n}: {item!r} needs a trailing +, - or =")
            themes[item[:-1]] = SIGN[item[-1]]
        out.append(Example(text.strip(), themes))
    return out


@dataclass(frozen=True)
class Report:
    micro_f1: float
    macro_f1: float
    per_theme: dict[str, tuple[float, float, float, int]]
    sentiment_accuracy: float
    sentiment_weighted_f1: float
    n: int


def evaluate(classifier: Classifier, examples: list[Example]) -> Report:
    ids = classifier.taxonomy.ids
    counts = {t: [0, 0, 0] for t in ids}  # tp, fp, fn
    truth, predicted = [], []
    for ex in examples:
        r = classifier.text(ex.text)
        found = {ts.theme: ts.label.value for ts in r.theme_sentiments}
        for t in ids:
            if t in found and t in ex.themes:
                counts[t][0] += 1
                truth.append(ex.themes[t])
                predicted.append(found[t])
            elif t in found:
                counts[t][1] += 1
            elif t in ex.themes:
                counts[t][2] += 1
    per_theme = {t: (*binary_f1(*c), c[0] + c[2]) for t, c in counts.items()}
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    sentiment = f1_scores(truth, predicted, ("negative", "neutral", "positive"))
    return Report(
        micro_f1=binary_f1(tp, fp, fn)[2],
        macro_f1=sum(v[2] for v in per_theme.values()) / len(per_theme),
        per_theme=per_theme,
        sentiment_accuracy=sum(a == b for a, b in zip(truth, predicted, strict=True)) / len(truth),
        sentiment_weighted_f1=sentiment.weighted,
        n=len(examples),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--taxonomy", type=Path, default=None)
    ap.add_argument("--data", type=Path, action="append", help="a labeled file (default: both in the repo)")
    args = ap.parse_args(argv)
    classifier = Classifier(taxonomy=load_taxonomy(args.taxonomy))
    baseline_classifier = Classifier(Vader(), taxonomy=classifier.taxonomy)
    for path in args.data or [DATA, LATER]:
        examples = load(path)
        report = evaluate(classifier, examples)
        print(f"themes on {report.n} labeled comments ({path.name}); taxonomy {classifier.taxonomy.source}")
        print(f"  {'theme':18s} precision recall  F1    support")
        for t, (p, r, f, support) in report.per_theme.items():
            print(f"  {t:18s} {p:9.3f} {r:6.3f} {f:6.3f} {support:6d}")
        print(f"  detection micro-F1 {report.micro_f1:.3f}, macro-F1 {report.macro_f1:.3f}")
        print(
            f"  theme sentiment (themes found correctly): accuracy {report.sentiment_accuracy:.3f}, "
            f"weighted-F1 {report.sentiment_weighted_f1:.3f}"
        )
        baseline = evaluate(baseline_classifier, examples)
        print(
            f"  the same clauses with plain VADER: accuracy {baseline.sentiment_accuracy:.3f}, "
            f"weighted-F1 {baseline.sentiment_weighted_f1:.3f}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
