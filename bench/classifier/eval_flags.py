"""`make eval-flags`: each flag on hand-written labeled examples (bench/classifier/data/flags.tsv
and flags_after.tsv, written after the first rules; see its header for its untuned score).

Prints precision, recall and F1 of `urgent`, `contains_pii` and `score_sentiment_mismatch`, and
checks that every comment flagged `contains_pii` comes out with no email, phone or card left.
"""

from __future__ import annotations

import argparse
import re
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.classifier.metrics import binary_f1
from npsloop_classifier.handlers import Classifier, classify
from npsloop_schemas import FeedbackReceivedPayloadV1, FeedbackReceivedV1

DATA = Path(__file__).with_name("data") / "flags.tsv"
LATER = Path(__file__).with_name("data") / "flags_after.tsv"
FLAGS = ("urgent", "contains_pii", "score_sentiment_mismatch")
_LEFTOVER = re.compile(r"@|\d{6,}|\d{3,}[ -]\d{3,}")


@dataclass(frozen=True)
class Example:
    flags: frozenset[str]
    score: int
    text: str


def load(path: Path = DATA) -> list[Example]:
    out = []
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise SystemExit(f"{path}:{n}: expected flags<TAB>score<TAB>comment")
        flags = frozenset(f for f in parts[0].split() if f != ".")
        if unknown := flags - set(FLAGS):
            raise SystemExit(f"{path}:{n}: unknown flags {sorted(unknown)}")
        out.append(Example(flags, int(parts[1]), parts[2]))
    return out


def event(ex: Example) -> FeedbackReceivedV1:
    eid = uuid.uuid4()
    return FeedbackReceivedV1(
        event_id=eid,
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        tenant_id="eval",
        source="eval",
        correlation_id=eid,
        payload=FeedbackReceivedPayloadV1(score=ex.score, comment=ex.text, channel="pos"),
    )


def evaluate(classifier: Classifier, examples: list[Example]) -> tuple[dict[str, tuple[float, float, float]], int]:
    counts = {f: [0, 0, 0] for f in FLAGS}
    leaks = 0
    for ex in examples:
        out = classify(event(ex), classifier, "eval").payload
        got = set(out.flags)
        for f in FLAGS:
            if f in got and f in ex.flags:
                counts[f][0] += 1  # true positive
            elif f in got:
                counts[f][1] += 1  # false positive
            elif f in ex.flags:
                counts[f][2] += 1  # false negative
        if "contains_pii" in got and _LEFTOVER.search(out.feedback.comment or ""):
            leaks += 1
    return {f: binary_f1(*c) for f, c in counts.items()}, leaks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, action="append", help="a labeled file (default: both in the repo)")
    args = ap.parse_args(argv)
    classifier = Classifier()
    for path in args.data or [DATA, LATER]:
        examples = load(path)
        scores, leaks = evaluate(classifier, examples)
        print(f"flags on {len(examples)} labeled comments ({path.name})")
        print(f"  {'flag':26s} precision recall  F1    support")
        for f, (p, r, f1) in scores.items():
            support = sum(1 for ex in examples if f in ex.flags)
            print(f"  {f:26s} {p:9.3f} {r:6.3f} {f1:6.3f} {support:6d}")
        print(f"  redacted comments with an address or long number left: {leaks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
