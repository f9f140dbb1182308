"""The actions policy: a versioned TOML file of rules by segment, SLAs, priorities and code lists.

`load_policy(path)` validates it; a file that does not parse, an unknown key or value, or two
rules that can match the same answer with different case kinds raise `PolicyError`, whose message
names the file and the line. `NPSLOOP_POLICY_FILE` picks the file; the default is
`default_policy.toml` next to this module. Evaluating the rules is pure (`matching`).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from npsloop_schemas import Band, CaseKind, Channel, NotificationKind, SentimentLabel

DEFAULT_POLICY = Path(__file__).parent / "default_policy.toml"
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Step = Literal["store_manager", "region"]
STEPS: tuple[Step, ...] = ("store_manager", "region")


class PolicyError(ValueError):
    """The policy file is wrong; the message names the file and the line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomerMatch(_Strict):
    at_risk: bool | None = None
    recovered: bool | None = None
    was_detractor: bool | None = None
    previous_band: list[Band] | None = None
    min_answers: int | None = Field(default=None, ge=1, description="Answers before this one, at least.")


class When(_Strict):
    """Every condition given must hold; a list matches any of its values; nothing given matches all."""

    band: list[Band] | None = None
    stores: list[str] | None = None
    channels: list[Channel] | None = None
    themes: list[str] | None = Field(default=None, description="The comment names one of these themes.")
    flags: list[str] | None = Field(default=None, description="The answer carries one of these flags.")
    sentiment: list[SentimentLabel] | None = Field(default=None, description="The comment's overall sentiment.")
    theme_sentiment: list[SentimentLabel] | None = Field(
        default=None, description="A theme of the comment (one of `themes`, if given) has this sentiment."
    )
    max_compound: float | None = Field(default=None, ge=-1, le=1)
    customer: CustomerMatch | None = None


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)
    when: When = Field(default_factory=When)
    case: CaseKind | None = None
    notify: list[NotificationKind] = Field(default_factory=list)
    surprise_and_delight: bool = False


def _clock(value: str) -> time:
    if value == "24:00":
        return time.max
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise ValueError(f"{value!r} is not a time of day HH:MM (00:00..24:00)")
    return time.fromisoformat(value)


class Sla(_Strict):
    callback_hours: float = Field(default=48, gt=0, le=10_000)
    nurture_hours: float = Field(default=120, gt=0, le=10_000)
    warning_at: float = Field(default=0.75, gt=0, lt=1)
    business_days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]), min_length=1)
    day_start: str = "00:00"
    day_end: str = "24:00"
    escalation: list[Step] = Field(default_factory=lambda: list(STEPS), min_length=1)
    escalate_every_hours: float = Field(default=24, gt=0)
    call_task_counts_as_contact: bool = Field(
        default=True,
        description="A call task handed to the call center stops the clock; false: only a recorded contact.",
    )

    @field_validator("day_start", "day_end")
    @classmethod
    def _time(cls, value: str) -> str:
        _clock(value)
        return value

    @model_validator(mode="after")
    def _window(self) -> Sla:
        if _clock(self.day_start) >= _clock(self.day_end):
            raise ValueError(f"day_start {self.day_start} must be before day_end {self.day_end}")
        return self

    def hours(self, kind: CaseKind) -> float:
        return self.callback_hours if kind is CaseKind.CALLBACK else self.nurture_hours


class Priority(_Strict):
    callback_base: int = Field(default=50, ge=0, le=100)
    nurture_base: int = Field(default=20, ge=0, le=100)
    per_point_below_7: int = Field(default=3, ge=0, le=100)
    negative_sentiment: int = Field(default=15, ge=0, le=100)
    at_risk: int = Field(default=10, ge=0, le=100)
    repeat_detractor: int = Field(default=10, ge=0, le=100)
    flags: dict[str, int] = Field(default_factory=dict)


class Policy(_Strict):
    version: Literal[1]
    root_causes: list[str] = Field(min_length=1)
    outcomes: list[str] = Field(min_length=1)
    sla: Sla = Field(default_factory=Sla)
    priority: Priority = Field(default_factory=Priority)
    rules: list[Rule] = Field(min_length=1)

    @property
    def sla_fingerprint(self) -> str:
        """Changes when the SLA changes: the monitor re-applies it to existing open cases."""
        return hashlib.sha256(self.sla.model_dump_json().encode()).hexdigest()[:16]


# -- evaluation --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Facts:
    """What a rule can look at: the answer, its classification, and the customer before it."""

    band: Band
    score: int
    store_id: str | None
    channel: Channel
    themes: frozenset[str]
    flags: frozenset[str]
    sentiment: SentimentLabel | None
    compound: float | None
    theme_sentiments: tuple[tuple[str, SentimentLabel], ...]
    at_risk: bool = False
    recovered: bool = False
    was_detractor: bool = False
    previous_band: Band | None = None
    answers_before: int = 0


def _any(wanted: list[Any] | None, have: Any) -> bool:
    return wanted is None or have in wanted


def rule_matches(when: When, f: Facts) -> bool:
    if not (_any(when.band, f.band) and _any(when.stores, f.store_id) and _any(when.channels, f.channel)):
        return False
    if when.themes is not None and not f.themes & set(when.themes):
        return False
    if when.flags is not None and not f.flags & set(when.flags):
        return False
    if when.sentiment is not None and f.sentiment not in when.sentiment:
        return False
    if when.max_compound is not None and (f.compound is None or f.compound > when.max_compound):
        return False
    if when.theme_sentiment is not None and not any(
        label in when.theme_sentiment and (when.themes is None or theme in when.themes)
        for theme, label in f.theme_sentiments
    ):
        return False
    c = when.customer
    if c is not None:
        if c.at_risk is not None and c.at_risk != f.at_risk:
            return False
        if c.recovered is not None and c.recovered != f.recovered:
            return False
        if c.was_detractor is not None and c.was_detractor != f.was_detractor:
            return False
        if c.previous_band is not None and f.previous_band not in c.previous_band:
            return False
        if c.min_answers is not None and f.answers_before < c.min_answers:
            return False
    return True


@dataclass(frozen=True)
class Outcome:
    rules: tuple[str, ...]
    case: CaseKind | None
    notify: tuple[NotificationKind, ...]
    surprise_and_delight: bool


def matching(policy: Policy, facts: Facts) -> Outcome:
    """All rules that match, in file order; conflicts were refused at load, so one case kind at most."""
    hits = [r for r in policy.rules if rule_matches(r.when, facts)]
    case = next((r.case for r in hits if r.case is not None), None)
    notify = tuple(dict.fromkeys(k for r in hits for k in r.notify))
    return Outcome(tuple(r.id for r in hits), case, notify, any(r.surprise_and_delight for r in hits))


def priority_of(policy: Policy, kind: CaseKind, f: Facts) -> int:
    p = policy.priority
    value = p.callback_base if kind is CaseKind.CALLBACK else p.nurture_base
    value += p.per_point_below_7 * max(0, 6 - f.score) if f.score < 7 else 0
    if f.sentiment is SentimentLabel.NEGATIVE and f.compound is not None:
        value += round(p.negative_sentiment * -f.compound)
    value += sum(p.flags.get(flag, 0) for flag in f.flags)
    value += p.at_risk if f.at_risk else 0
    value += p.repeat_detractor if f.was_detractor and f.band is Band.DETRACTOR else 0
    return max(0, min(100, value))


# -- loading -----------------------------------------------------------------------------------
def _disjoint(a: list[Any] | None, b: list[Any] | None) -> bool:
    return a is not None and b is not None and not set(a) & set(b)


def may_overlap(a: When, b: When) -> bool:
    """Could one answer match both? Single-valued facts with disjoint lists cannot."""
    pairs = [(a.band, b.band), (a.stores, b.stores), (a.channels, b.channels), (a.sentiment, b.sentiment)]
    if any(_disjoint(x, y) for x, y in pairs):
        return False
    ca, cb = a.customer or CustomerMatch(), b.customer or CustomerMatch()
    for name in ("at_risk", "recovered", "was_detractor"):
        x, y = getattr(ca, name), getattr(cb, name)
        if x is not None and y is not None and x != y:
            return False
    return not _disjoint(ca.previous_band, cb.previous_band)


class _Lines:
    """Finds the line of a validation error's location in the TOML text (best effort, never wrong by much)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def _headers(self, name: str) -> list[int]:
        pattern = re.compile(r"^\s*\[\[\s*" + re.escape(name) + r"\s*\]\]")
        return [i for i, line in enumerate(self.lines) if pattern.match(line)]

    def find(self, loc: tuple[int | str, ...]) -> int:
        pos, prev = 0, None
        for part in loc:
            if isinstance(part, int) and isinstance(prev, str):
                headers = self._headers(prev)
                if part < len(headers):
                    pos = headers[part]
            elif isinstance(part, str):
                key = re.compile(
                    r"^\s*(\[+\s*([\w.-]+\.)?)?" + re.escape(part) + r"\s*(=|\]|\.)|[{,]\s*" + re.escape(part) + r"\s*="
                )
                for i in range(pos, len(self.lines)):
                    if key.search(self.lines[i]):
                        pos = i
                        break
            prev = part
        return pos + 1

    def rule(self, index: int) -> int:
        headers = self._headers("rules")
        return headers[index] + 1 if index < len(headers) else 1


def parse_policy(text: str, file: str = "<policy>") -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise PolicyError(f"{file}:{m.group(1) if m else 1}: not valid TOML: {exc}") from None
    lines = _Lines(text)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors(include_input=False, include_url=False):
            loc = tuple(e["loc"])
            where = ".".join(str(p) for p in loc) or "(top)"
            problems.append(f"{file}:{lines.find(loc)}: {where}: {e['msg']}")
        raise PolicyError("; ".join(problems)) from None
    seen: dict[str, int] = {}
    for i, rule in enumerate(policy.rules):
        if rule.id in seen:
            raise PolicyError(
                f"{file}:{lines.rule(i)}: rule id {rule.id!r} is used twice (first at line {seen[rule.id]})"
            )
        seen[rule.id] = lines.rule(i)
        if not (rule.case or rule.notify or rule.surprise_and_delight):
            raise PolicyError(f"{file}:{lines.rule(i)}: rule {rule.id!r} does nothing (no case, notify or marker)")
    for i, a in enumerate(policy.rules):
        for j in range(i + 1, len(policy.rules)):
            b = policy.rules[j]
            if a.case and b.case and a.case != b.case and may_overlap(a.when, b.when):
                raise PolicyError(
                    f"{file}:{lines.rule(j)}: rule {b.id!r} (case {b.case}) conflicts with rule {a.id!r} "
                    f"(case {a.case}, line {lines.rule(i)}): one answer could match both; narrow one of them"
                )
    return policy


def load_policy(path: str | Path | None = None) -> Policy:
    file = Path(path) if path else DEFAULT_POLICY
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{file}:0: no such file (NPSLOOP_POLICY_FILE)") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{file}:0: not UTF-8 text ({exc.reason})") from None
    return parse_policy(text, str(file))


def main(argv: list[str] | None = None) -> int:
    """`python -m npsloop_actions.policy [FILE]`: check a policy file as the service would at start."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    try:
        policy = load_policy(args[0] if args else None)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"ok: {len(policy.rules)} rules ({', '.join(r.id for r in policy.rules)}); SLA {policy.sla_fingerprint}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
