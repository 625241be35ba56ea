"""Personal data: emails and phone numbers in normal form, their salted hashes, and redaction.

Raw emails and phone numbers never reach a table: ingest stores `salted_hash(salt, normal form)`
(`email_hash`, `phone_hash`), and a rejected record keeps its raw text with each email, phone
and PII value replaced by a `[redacted sha256:<the same hash>]` token, so a reject can still be
matched to its person.
"""

from __future__ import annotations

import hashlib
import re

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?\d{6,15}$")
# What looks like an email address or an international phone number inside free text.
_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE_IN_TEXT = re.compile(r"(?:\+|\b00)\d[\d \-().\/]{5,}\d")
#: An email address in normal form, for SQL (`regexp_matches`), the same rule as `_EMAIL`.
EMAIL_PATTERN = _EMAIL.pattern


def normalize_email(value: str) -> str:
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise ValueError(f"{value!r} is not an email address")
    return email


def normalize_phone(value: str) -> str:
    phone = re.sub(r"[\s\-().\/]", "", value)
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if not _PHONE.match(phone):
        raise ValueError(f"{value!r} is not a phone number")
    return phone


def salted_hash(salt: str, value: str) -> str:
    return hashlib.sha256(f"{salt}|{value}".encode()).hexdigest()


def redact(text: str, salt: str, known: list[str]) -> str:
    """Replace personal data in a rejected record by its salted hash.

    `known` are the record's email/phone/PII values when it could be parsed (six characters or
    more); email addresses and international phone numbers are also found by pattern, for records
    that could not be parsed."""
    def token(value: str) -> str:
        # A valid email or phone gets the hash of email_hash / phone_hash, so that a reject can
        # be matched to its person (journeys forget); anything else its trimmed lower case.
        for normalize in (normalize_email, normalize_phone):
            try:
                return f"[redacted sha256:{salted_hash(salt, normalize(value))}]"
            except ValueError:
                continue
        return f"[redacted sha256:{salted_hash(salt, value.strip().lower())}]"

    # Shorter values are no real email or phone, and replacing them could mangle other fields.
    for value in sorted({k for k in known if len(k) >= 6}, key=len, reverse=True):
        text = text.replace(value, token(value))
    text = _EMAIL_IN_TEXT.sub(lambda m: token(m.group(0)), text)
    return _PHONE_IN_TEXT.sub(lambda m: token(m.group(0)), text)
