"""The pipeline's vocabulary: every fixed value a rule depends on, defined once.

Python imports these names; SQL models get them as bound parameters (`model_parameters`) or,
for the identifier precedence, as the config table `cfg_identifier_types`. Nothing else spells
them out, so a value cannot drift between ingest, the models, the checks and the report.
(`sql/stg_events.sql` names the identifier columns in precedence order, as SQL must name
columns; `tests/sql/test_models.py` checks that order against `IDENTIFIER_TYPES`.)
"""

from __future__ import annotations

from typing import Any

# --- identifiers -------------------------------------------------------------------------------

#: Identifier columns of an event, strongest first: the first present is the event's anchor,
#: the identifier that decides its person; links are applied in this order within an event.
IDENTIFIER_TYPES = ("customer_id", "anonymous_id", "email_hash", "phone_hash")
CUSTOMER_ID = IDENTIFIER_TYPES[0]
#: The identifier fields a source maps (email and phone are hashed into email_hash, phone_hash).
SOURCE_IDENTIFIERS = ("customer_id", "anonymous_id", "email", "phone")
#: Prefix of the person_id of a person without a customer_id (`anon-` + 16 hex digits).
ANONYMOUS_PREFIX = "anon-"

# --- survey scores -----------------------------------------------------------------------------

#: Each survey score column's scale (inclusive).
SCORE_RANGES: dict[str, tuple[int, int]] = {"nps_score": (0, 10), "csat_score": (1, 5),
                                            "ces_score": (1, 7)}
#: NPS: answers from 9 are promoters, answers up to 6 detractors (7-8 passives).
NPS_PROMOTER_MIN = 9
NPS_DETRACTOR_MAX = 6
#: CSAT: answers from 4 are satisfied.
CSAT_SATISFIED_MIN = 4
#: Ranges of the KPIs and rates the tables publish.
KPI_RANGES: dict[str, tuple[float, float]] = {
    "nps": (-100, 100), "csat": (0, 100), "ces": SCORE_RANGES["ces_score"],
    "conversion_rate": (0, 1), "exit_rate": (0, 1), "abandonment_rate": (0, 1),
    "step_conversion": (0, 1),
}

# --- reject reasons ----------------------------------------------------------------------------

MALFORMED_RECORD = "malformed_record"
MISSING_FIELD = "missing_field"
BAD_TIMESTAMP = "bad_timestamp"
TOO_FAR_IN_FUTURE = "too_far_in_future"
MISSING_IDENTIFIER = "missing_identifier"
BAD_VALUE = "bad_value"
OUT_OF_RANGE = "out_of_range"
CONFLICTING_DUPLICATE = "conflicting_duplicate"
#: Failure type of a rejected record (`rejected_events.reason`) -> what it means.
REJECT_REASONS: dict[str, str] = {
    MALFORMED_RECORD: "a CSV line with the wrong number of fields or broken quoting; an "
    "NDJSON line that is not a JSON object",
    BAD_TIMESTAMP: "occurred_at empty, not in the source's timestamp format, a local time "
    "that does not exist (clocks jumped forward), or epoch seconds/milliseconds mixed up",
    TOO_FAR_IN_FUTURE: "occurred_at later than load time + max_future",
    MISSING_IDENTIFIER: "no customer_id, anonymous_id, email or phone",
    MISSING_FIELD: "event_type or channel missing",
    OUT_OF_RANGE: "a survey score outside its scale (" + ", ".join(
        f"{name.removesuffix('_score').upper()} {low}-{high}"
        for name, (low, high) in SCORE_RANGES.items()) + ")",
    BAD_VALUE: "a value of the wrong kind: revenue or a score that is not a number, an email "
    "address or phone number that is not one",
    CONFLICTING_DUPLICATE: "an event_id already read with other content (the first one "
    "stays; a replay loads only under a new id)",
}

# --- statuses ----------------------------------------------------------------------------------

JOURNEY_OPEN, JOURNEY_CLOSED = "open", "closed"
JOURNEY_STATUSES = (JOURNEY_OPEN, JOURNEY_CLOSED)
ATTEMPT_COMPLETED, ATTEMPT_ABANDONED, ATTEMPT_PENDING = "completed", "abandoned", "pending"
ABANDONMENT_STATUSES = (ATTEMPT_COMPLETED, ATTEMPT_ABANDONED, ATTEMPT_PENDING)
FILE_LOADED, FILE_REJECTED = "loaded", "rejected"
FILE_STATUSES = (FILE_LOADED, FILE_REJECTED)
#: Compressed CSV and NDJSON files, by the end of their name, and the codec that reads them: a
#: source's path pattern matches them too (`*.csv` also takes `x.csv.gz`).
COMPRESSION = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
#: How a survey answer found the touchpoint it rates (`survey_answers.attribution`).
ATTRIBUTION_NAMED, ATTRIBUTION_PREVIOUS, ATTRIBUTION_NONE = (
    "named", "previous_touchpoint", "unattributed")
ATTRIBUTIONS = (ATTRIBUTION_NAMED, ATTRIBUTION_PREVIOUS, ATTRIBUTION_NONE)
#: The touchpoint of a survey answer that rates none.
UNATTRIBUTED_TOUCHPOINT = "(unattributed)"
#: How a run rebuilt the tables (`pipeline_state.mode`).
FULL, INCREMENTAL = "full", "incremental"
#: The dimension and segment that hold the whole population in every breakdown.
ALL_SEGMENT = "all"


def model_parameters() -> dict[str, Any]:
    """The vocabulary as the SQL models' bound parameters (`$journey_open`, ...)."""
    return {
        "journey_open": JOURNEY_OPEN, "journey_closed": JOURNEY_CLOSED,
        "attempt_completed": ATTEMPT_COMPLETED, "attempt_abandoned": ATTEMPT_ABANDONED,
        "attempt_pending": ATTEMPT_PENDING,
        "attribution_named": ATTRIBUTION_NAMED, "attribution_previous": ATTRIBUTION_PREVIOUS,
        "attribution_none": ATTRIBUTION_NONE, "unattributed_touchpoint": UNATTRIBUTED_TOUCHPOINT,
        "all_segment": ALL_SEGMENT,
        "nps_promoter_min": NPS_PROMOTER_MIN, "nps_detractor_max": NPS_DETRACTOR_MAX,
        "csat_satisfied_min": CSAT_SATISFIED_MIN,
    }
