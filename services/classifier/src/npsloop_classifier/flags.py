"""Flags on a comment: `urgent`, `contains_pii` (with the redacted text) and `score_sentiment_mismatch`.

- urgent: a threat to leave, legal words, safety or health, a request to be called.
- contains_pii: emails, phone numbers, card-like numbers (13-19 digits passing Luhn) and IBANs
  (ISO 13616 mod-97). Each is replaced by a marker, `[email]`, `[phone]`, `[card]`, `[iban]`.
- score_sentiment_mismatch: a promoter whose comment reads clearly negative, or a detractor whose
  comment reads clearly positive (|compound| >= MISMATCH): a reversed scale, or a wrong field.
"""

from __future__ import annotations

import re

from npsloop_schemas import Band, Sentiment, SentimentLabel

URGENT = "urgent"
MISMATCH_FLAG = "score_sentiment_mismatch"
PII = "contains_pii"
NO_CONTACT = "no_contact"
MISMATCH = 0.4

_URGENT = re.compile(
    r"\b(?:"
    # leaving
    r"never (?:again|coming back|going back|shopping here|shop here|return(?:ing)?)|last time i(?:'ll| will)? "
    r"(?:shop|come|buy|visit)|(?:won't|will not|wont) be (?:back|coming back|returning|shopping)|"
    r"(?:won't|will not|wont) (?:come|go|shop) (?:back|here|there)|take my (?:business|custom|money) elsewhere|"
    r"cancel(?:l?ing|l?ed)? my (?:membership|account|subscription|order|loyalty card)|clos(?:e|ing) my account|"
    r"switch(?:ing)? to (?:a |another )?(?:competitor|rival)|going to (?:a |the )?competitor|"
    # legal
    r"lawyers?|solicitors?|attorney|sue|suing|legal action|(?:in|to) court|court case|trading standards|ombudsman|"
    r"small claims|"
    r"consumer (?:protection|rights)|fraud(?:ulent)?|scam(?:med)?|report (?:you|this|it) to|"
    # safety and health
    r"unsafe|dangerous|hazard(?:ous)?|injur(?:y|ed|ies)|hurt (?:myself|me|my)|hospital|a&e|ambulance|"
    r"food poisoning|poisoned|allergic reaction|anaphyla\w*|made (?:me|us|my \w+) (?:sick|ill)|"
    r"vomit\w*|slipped|tripped|fell (?:over|down)|cut (?:myself|my \w+)|burn(?:ed|t)|on fire|choking|choked|"
    r"(?:glass|metal|plastic) in (?:my|the)|contaminated|electric shock|"
    # a request to be called
    r"(?:call|phone|ring|contact) me|call (?:me )?back|get in touch|speak (?:to|with) (?:a|the|your) manager|"
    r"(?:want|need|like) (?:to )?(?:speak|talk) to (?:someone|somebody|a person|a manager)|"
    r"(?:someone|somebody) (?:to )?(?:call|contact|ring)|expect a call|waiting for (?:a|your) call"
    r")\b",
    re.IGNORECASE,
)

# Each starts only where a token starts (the lookbehinds): one attempt per token, linear in the text.
_EMAIL = re.compile(r"(?<![\w.+%-])[\w.+%-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", re.IGNORECASE)
_DIGITS = re.compile(r"(?<![\w+])\+?\(?\d[\d ().\-/]{5,26}\d(?!\w)")
_DATE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    s = candidate.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _number_kind(match: str) -> str | None:
    digits = re.sub(r"\D", "", match)
    stripped = match.strip()
    if _DATE.match(stripped):
        return None
    if 13 <= len(digits) <= 19 and _luhn(digits) and not stripped.startswith(("+", "0")):
        return "[card]"
    phone_like = stripped.startswith(("+", "0", "(0", "(+"))
    if 8 <= len(digits) <= 15 and phone_like:
        return "[phone]"
    return None


def redact(text: str) -> tuple[str, list[str]]:
    """The text with emails, IBANs, card numbers and phone numbers replaced, and which were found."""
    found: list[str] = []

    def email(m: re.Match[str]) -> str:
        found.append("email")
        return "[email]"

    def iban(m: re.Match[str]) -> str:
        if not _iban_ok(m.group(0)):
            return m.group(0)
        found.append("iban")
        return "[iban]"

    def number(m: re.Match[str]) -> str:
        kind = _number_kind(m.group(0))
        if kind is None:
            return m.group(0)
        found.append(kind.strip("[]"))
        return kind

    if "@" in text:
        text = _EMAIL.sub(email, text)
    text = _IBAN.sub(iban, text)
    text = _DIGITS.sub(number, text)
    return text, found


def is_urgent(text: str) -> bool:
    return _URGENT.search(text) is not None


def mismatch(band: Band, sentiment: Sentiment | None) -> bool:
    if sentiment is None or sentiment.label is SentimentLabel.UNKNOWN:
        return False
    if band is Band.PROMOTER:
        return sentiment.compound <= -MISMATCH
    if band is Band.DETRACTOR:
        return sentiment.compound >= MISMATCH
    return False
