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

from .caseless import Caseless

URGENT = "urgent"
MISMATCH_FLAG = "score_sentiment_mismatch"
PII = "contains_pii"
NO_CONTACT = "no_contact"
MISMATCH = 0.4

_URGENT = Caseless(
    r"\b(?:"
    # leaving
    r"never (?:again|coming back|going back|shopping here|shop here|set foot|return(?:ing)?)|"
    r"(?:for the )?last time i(?:'ll| will)? (?:shop|come|buy|visit)|"
    r"(?:won't|will not|wont|not) (?:be )?(?:back|coming back|returning|shopping here)|"
    r"(?:won't|will not|wont) (?:come|go|shop) (?:back|here|there)|"
    r"take my (?:business|custom|money) elsewhere|(?:shop|go|going) elsewhere|"
    r"lost (?:a|my|your) (?:customer|custom)|(?:i'm|i am) done with (?:this|you|your)|"
    r"going to \w+ (?:from now on|instead)|"
    r"cancel(?:l?ing|l?ed)? my (?:membership|account|subscription|order|loyalty card)|clos(?:e|ing) my account|"
    r"switch(?:ing)? to (?:a |another )?(?:competitor|rival)|going to (?:a |the )?competitor|"
    # legal
    r"lawyers?|solicitors?|attorney|(?:will|going to|gonna) sue|sue (?:you|them|your|the)|suing|"
    r"legal action|(?:in|to) court|court case|trading standards|ombudsman|small claims|police|"
    r"taking (?:this|it) further|take (?:this|it) further|compensation|"
    r"consumer (?:protection|rights)|fraud(?:ulent)?|scam(?:med)?|theft|stolen|report (?:you|this|it) to|"
    # safety and health
    r"unsafe|dangerous|danger|hazard(?:ous)?|injur(?:y|ed|ies)|hurt (?:myself|me|my|herself|himself)|"
    r"(?:could|might) (?:get|have been) (?:hurt|injured|killed)|hospital|a&e|ambulance|"
    r"food poisoning|poisoned|allergic reaction|anaphyla\w*|"
    r"(?:made|got|felt|became|was) (?:me |us |my \w+ )?(?:sick|ill)|"
    r"vomit\w*|slipped|tripped|fell (?:over|down|off)|(?:my \w+|she|he|i|we) fell|had a fall|"
    r"cut (?:myself|my \w+)|burn(?:ed|t)|on fire|choking|choked|bleeding|"
    r"(?:broken )?glass (?:in|on|left)|(?:metal|plastic) in (?:my|the)|needles? (?:on|in|left)|syringes?|"
    r"contaminated|"
    r"electric shock|"
    r"rats?|mice|cockroach(?:es)?|"
    # a request to be called
    r"(?:call|phone|ring|contact) me|call (?:me )?back|get (?:back )?in touch|get back to me|"
    r"speak (?:to|with) (?:a|the|your) manager|(?:a|the) manager (?:to )?(?:call|ring|phone|contact)|"
    r"(?:want|need|like) (?:to )?(?:speak|talk) to (?:someone|somebody|a person|a manager)|"
    r"(?:someone|somebody) (?:to )?(?:call|contact|ring)|expect a (?:phone )?call|waiting for (?:a|your) call|"
    r"as soon as possible|asap"
    r")\b"
)

# Each starts only where a token starts (the lookbehinds): one attempt per token, linear in the text.
_EMAIL = re.compile(r"(?<![\w.+%-])[\w.+%-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", re.IGNORECASE)
_DIGITS = re.compile(r"(?<![\w+])\+?\(?\d[\d ().\-/]{5,26}\d(?!\w)")
_DIGIT = re.compile(r"\d")
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
    if _DIGIT.search(text) is None:  # IBANs, cards and phones all hold digits; most comments none
        return text, found
    text = _IBAN.sub(iban, text)
    text = _DIGITS.sub(number, text)
    return text, found


def is_urgent(text: str) -> bool:
    return _URGENT.search(text)


def mismatch(band: Band, sentiment: Sentiment | None) -> bool:
    if sentiment is None or sentiment.label is SentimentLabel.UNKNOWN:
        return False
    if band is Band.PROMOTER:
        return sentiment.compound <= -MISMATCH
    if band is Band.DETRACTOR:
        return sentiment.compound >= MISMATCH
    return False
