"""The pipeline config: one YAML file, one typed model, validated at load.

Layer 1, just above `journey_core.contract`, the only part of the library it imports.

A bad config fails in `load_config` with a message naming the key and the problem, never deep
inside a run.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from journey_core.contract.vocabulary import ALL_SEGMENT, COMPRESSION

#: Canonical fields a source may map or fix. `email` and `phone` are hashed at ingest.
CANONICAL_FIELDS = (
    "event_id",
    "occurred_at",
    "channel",
    "touchpoint",
    "event_type",
    "customer_id",
    "anonymous_id",
    "account_id",
    "email",
    "phone",
    "revenue",
    "nps_score",
    "csat_score",
    "ces_score",
    "rated_touchpoint",
)

_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|days?|hours?|minutes?|seconds?)\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60,
                 "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400,
                 "days": 86400}


def micros(delta: timedelta) -> int:
    """A duration as whole microseconds, how the SQL models take durations."""
    return round(delta.total_seconds() * 1_000_000)


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file, the key and the problem."""


def parse_duration(value: Any) -> timedelta:
    """Read `30m`, `1 h`, `7 days`, `90s` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (examples: 30m, 1h, 7 days, 90s)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{value!r} must be a positive duration")
    return timedelta(seconds=seconds)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimestampSpec(_Model):
    """How a source writes `occurred_at`.

    format: `iso8601`, `epoch_s`, `epoch_ms`, or a strptime pattern such as `%d/%m/%Y %H:%M`.
    timezone: the IANA zone of naive times (times with an offset keep their own).
    """

    format: str = "iso8601"
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)") from None
        return value

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in ("iso8601", "epoch_s", "epoch_ms") and "%" not in value:
            raise ValueError(
                f"{value!r} is not a timestamp format: use iso8601, epoch_s, epoch_ms "
                "or a strptime pattern"
            )
        return value


class SourceConfig(_Model):
    """One exporting system: where its files are and how its fields map to the canonical event.

    A source whose files already use canonical column names needs only name, path and format.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    #: A folder and a file-name pattern (`web/*.ndjson`, relative to the config's folder), or
    #: on the Spark engine with its own ingest (`spark.ingest: spark`, the default) a URI
    #: Spark's readers list (`s3a://bucket/web/*.ndjson`).
    path: str
    format: Literal["csv", "ndjson", "parquet"]
    fields: dict[str, str] = {}
    constants: dict[str, str] = {}
    touchpoint_prefix: str = ""
    timestamp: TimestampSpec = TimestampSpec()
    event_types: dict[str, str] = {}
    #: Unmapped fields holding personal data (an invited friend's email, ...): properties keep
    #: only their salted hash.
    pii_fields: list[str] = []

    @field_validator("fields", "constants")
    @classmethod
    def _canonical_keys(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(CANONICAL_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown canonical field(s) {unknown}; allowed: {', '.join(CANONICAL_FIELDS)}"
            )
        return value

    @model_validator(mode="after")
    def _no_field_both_mapped_and_fixed(self) -> SourceConfig:
        both = sorted(set(self.fields) & set(self.constants))
        if both:
            raise ValueError(f"{both} is both mapped in `fields` and fixed in `constants`")
        return self

    def source_field(self, canonical: str) -> str | None:
        """The source column feeding a canonical field (its own name when not remapped)."""
        if canonical in self.constants:
            return None
        return self.fields.get(canonical, canonical)


class IdentityConfig(_Model):
    """Identity stitching and hashing of emails and phone numbers."""

    salt_env: str = "JOURNEYS_HASH_SALT"
    #: Used only when the variable named by `salt_env` is unset; fine for samples, not production.
    default_salt: str = "journeys-development-salt"
    #: Production: the salt must come from `salt_env`; unset, empty or the development
    #: default stops the run (`JOURNEYS_ENV=production` does the same without the config).
    production: bool = False


class StageRule(_Model):
    """Events matching every given condition get `stage` (a null stage means: no stage).

    Each condition is a value or a list of values; an omitted condition matches anything.
    """

    stage: str | None
    channel: list[str] | None = None
    event_type: list[str] | None = None
    touchpoint: list[str] | None = None

    @field_validator("channel", "event_type", "touchpoint", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("an empty list matches nothing; omit the condition to match anything")
        return [value] if isinstance(value, str) else value


class StagesConfig(_Model):
    """Stage names in funnel order and the rules that tag events (first matching rule wins)."""

    order: list[str] = ["awareness", "consideration", "conversion", "retention", "advocacy"]
    conversion: str = "conversion"
    rules: list[StageRule] = []

    @model_validator(mode="after")
    def _rules_name_known_stages(self) -> StagesConfig:
        if len(set(self.order)) != len(self.order) or not self.order:
            raise ValueError("`order` must list distinct stage names")
        if self.conversion not in self.order:
            raise ValueError(f"conversion stage {self.conversion!r} is not in `order`")
        for i, rule in enumerate(self.rules):
            if rule.stage is not None and rule.stage not in self.order:
                raise ValueError(f"rules[{i}].stage {rule.stage!r} is not in `order` {self.order}")
        return self


class AbandonmentRule(_Model):
    """A session with a `start` event is an attempt, completed by a `complete` event in the
    session or within `window` after the session's last start event."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    start: str
    complete: str
    window: timedelta

    @field_validator("window", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        window = parse_duration(value)
        if window.total_seconds() != int(window.total_seconds()):
            raise ValueError(f"{value!r} must be a whole number of seconds")
        return window


def _default_abandonment() -> list[AbandonmentRule]:
    return [
        AbandonmentRule(name="cart", start="add_to_cart", complete="purchase", window="24h"),
        AbandonmentRule(name="checkout", start="checkout_start", complete="purchase", window="1h"),
    ]




class SegmentDimension(_Model):
    """A segment dimension: a journey's segment is the first non-null value (in event order) of
    an event `property` or `column`, within the journey or within the person's whole history.

    With `present`, the segment is `present` when any value exists, else `missing` (for example
    b2b when the person has an account_id, else b2c).
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    property: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    column: Literal["channel", "touchpoint", "event_type", "source", "account_id"] | None = None
    scope: Literal["person", "journey"] = "journey"
    present: str | None = None
    missing: str = "(none)"

    @field_validator("name")
    @classmethod
    def _not_all(cls, value: str) -> str:
        if value == ALL_SEGMENT:
            raise ValueError(f"`{ALL_SEGMENT}` is reserved for the whole population")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> SegmentDimension:
        if (self.property is None) == (self.column is None):
            raise ValueError("give exactly one of `property` or `column`")
        return self


class AccountConfig(_Model):
    """B2B accounts: a person's account is their first account_id; their role in it the first
    value of `role_property` in their events."""

    role_property: str | None = Field(default="role", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class KpiConfig(_Model):
    """Which event type is a survey answer (surveys are rated, never rate themselves)."""

    survey_event_type: str = "survey_response"


class DuckDBSettings(_Model):
    """How much of the machine DuckDB may use. Unset: DuckDB's defaults (80% of memory, every
    core, spilling beside the database file)."""

    #: e.g. `4GB`; beyond it DuckDB spills sorts, joins and aggregates to `temp_directory`.
    memory_limit: str | None = Field(default=None, pattern=r"^\s*\d+(\.\d+)?\s*[KMGT]i?B\s*$")
    #: Spill folder, relative to the config file's folder when relative.
    temp_directory: str | None = None
    threads: int | None = Field(default=None, ge=1)


class SparkSettings(_Model):
    """Where the Spark engine (`engine: spark`) runs. See the README, "When one machine is not
    enough"."""

    #: `local[N]` (a session in this process), `spark://host:7077`, `yarn`, ... or a Spark
    #: Connect server, `sc://host:15002`. Unset: `local[2]`, or under `spark-submit` the
    #: master it was given (set here, this one wins, as a master set in code does in Spark).
    master: str | None = None
    #: Spark settings (`spark.driver.memory: 4g`, object-store credentials, ...); the settings
    #: that make results equal DuckDB's (UTC session time zone, ANSI mode) are pinned.
    conf: dict[str, str] = {}
    #: The Spark tables' location (`spark.sql.warehouse.dir`: a folder, or an object-store URI
    #: such as `s3a://bucket/journeys`). Default: `<warehouse>/spark`. A folder also holds the
    #: tables' catalog (`metastore_db`), so runs are incremental; an object store needs a
    #: metastore of its own (`conf`), else every run rebuilds every person.
    warehouse: str | None = None
    #: Where a run on the Spark engine ingests the source files: `spark` (Spark's readers,
    #: into the Spark tables: `journey_core.ingest.spark`) or `duckdb` (the DuckDB file's
    #: loader, faster on one machine, its tables handed over to Spark each run). A warehouse
    #: whose ingest ran on DuckDB hands its ingest tables over once, at its first ingest on
    #: Spark; one whose ingest ran on Spark refuses DuckDB's hand-over from then on. On such a
    #: warehouse `journeys rejects` and `journeys forget` read and erase the Spark tables when
    #: the engine is Spark's (`engine: spark`, or `--engine spark`). See docs/spark-ingest.md.
    ingest: Literal["duckdb", "spark"] = "spark"


#: The engines a run can build the tables on.
ENGINES = ("duckdb", "spark")


class Config(_Model):
    """The whole pipeline config; relative source paths resolve against `base_dir`."""

    sources: list[SourceConfig]
    identity: IdentityConfig = IdentityConfig()
    #: Events later than load time + max_future are rejected as too far in the future.
    max_future: timedelta = timedelta(days=1)
    #: An event that arrives more than this before the published as-of (the end of the latest
    #: partition already processed) is still folded into its sessions and journeys, and is
    #: also listed in `late_events`: the days it restates were published long ago.
    max_lateness: timedelta = timedelta(days=3)
    session_timeout: timedelta = timedelta(minutes=30)
    journey_timeout: timedelta = timedelta(days=30)
    stages: StagesConfig = StagesConfig()
    abandonment: list[AbandonmentRule] = Field(default_factory=_default_abandonment)
    kpis: KpiConfig = KpiConfig()
    segments: list[SegmentDimension] = []
    accounts: AccountConfig = AccountConfig()
    duckdb: DuckDBSettings = DuckDBSettings()
    #: Where the tables are built: `duckdb` (the embedded default) or `spark`.
    engine: Literal["duckdb", "spark"] = "duckdb"
    spark: SparkSettings = SparkSettings()
    base_dir: Path = Path(".")

    @field_validator("sources")
    @classmethod
    def _distinct_sources(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        if not sources:
            raise ValueError("must list at least one source")
        names = [s.name for s in sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {dupes}")
        return sources

    @field_validator("segments")
    @classmethod
    def _distinct_dimensions(cls, dims: list[SegmentDimension]) -> list[SegmentDimension]:
        names = [d.name for d in dims]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"segment dimension names must be unique; repeated: {dupes}")
        return dims

    @field_validator("session_timeout", "journey_timeout", "max_future", "max_lateness",
                     mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.journey_timeout < self.session_timeout:
            raise ValueError("`journey_timeout` must be at least `session_timeout`")
        rule_names = [r.name for r in self.abandonment]
        if len(set(rule_names)) != len(rule_names):
            raise ValueError("abandonment rule names must be unique")
        return self

    def ingest_on_spark(self, engine: str | None = None) -> bool:
        """The source files are ingested with Spark's readers into the Spark tables: the
        engine (`engine`, a command's `--engine`, else the config's) is Spark's and
        `spark.ingest` is `spark`, its default."""
        return (engine or self.engine) == "spark" and self.spark.ingest == "spark"

    def landing_folder(self, source: SourceConfig) -> Path:
        """The folder the source's files are read from (relative paths: below `base_dir`)."""
        folder = Path(source.path).parent
        return folder if folder.is_absolute() else self.base_dir / folder

    def source_files(self, source: SourceConfig) -> list[Path]:
        """The source's files, in sorted path order (the order they are loaded in). A CSV or
        NDJSON source's pattern also matches its files compressed (`.gz`, `.zst`, `.zstd`)."""
        folder = self.landing_folder(source)
        return sorted({p for glob in source_patterns(source) for p in folder.glob(glob)
                       if p.is_file()})


def source_patterns(source: SourceConfig) -> list[str]:
    """The file-name patterns of a source's files: its path's, and for CSV and NDJSON the
    same compressed."""
    pattern = source.path.rstrip("/").rpartition("/")[2]
    return [pattern] + ([pattern + suffix for suffix in COMPRESSION]
                        if source.format in ("csv", "ndjson") else [])


def source_uri(source: SourceConfig) -> str | None:
    """The folder of a source given as a URI (`s3a://bucket/landing/web/*.ndjson`,
    `file:///data/web/*.ndjson`): only ingest with Spark's readers (`Config.ingest_on_spark`)
    lists and reads such a source. None for a path."""
    if "://" not in source.path:
        return None
    return source.path.rstrip("/").rpartition("/")[0]


def _format_error(path: Path, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{key}: {message}")
    return f"{path}: invalid config: " + "; ".join(problems)


def load_config(path: str | Path) -> Config:
    """Load and validate a YAML config; raise ConfigError naming the key and the problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8")
    try:
        # libyaml's loader (a run loads the config dozens of times; 3 ms against 26 here)
        raw = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as fast:
        try:  # the pure-Python loader says where, with the line and a caret under the spot
            yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        raise ConfigError(f"{path}: not valid YAML: {fast}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping with a `sources` key")
    raw["base_dir"] = str(path.resolve().parent / raw.get("base_dir", "."))
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(path, exc)) from None
