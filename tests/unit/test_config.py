"""Config: defaults, durations, and load errors that name the file, the key and the problem."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from journey_core.config import Config, ConfigError, load_config, parse_duration

SOURCE = "sources:\n  - {name: web, path: landing/web/*.csv, format: csv}\n"


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "journeys.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert str(tmp_path / "journeys.yaml") in message  # every message names the file
    # the rest of the message, so that the test's folder name cannot satisfy a key check
    return message.replace(str(tmp_path / "journeys.yaml"), "<file>")


def test_defaults(tmp_path):
    """Only `sources` is required; the rest defaults as documented in config.py: sessions 30 min,
    journeys 30 days, five stages with conversion third, cart (24 h) and checkout (1 h)
    abandonment, survey_response answers, ISO 8601 UTC timestamps, salt from
    JOURNEYS_HASH_SALT."""
    config = _load(tmp_path, SOURCE)
    assert config.session_timeout == timedelta(minutes=30)
    assert config.journey_timeout == timedelta(days=30)
    assert config.stages.order == [
        "awareness", "consideration", "conversion", "retention", "advocacy",
    ]
    assert config.stages.conversion == "conversion"
    assert config.stages.rules == []
    assert [(r.name, r.start, r.complete, r.window) for r in config.abandonment] == [
        ("cart", "add_to_cart", "purchase", timedelta(hours=24)),
        ("checkout", "checkout_start", "purchase", timedelta(hours=1)),
    ]
    assert config.kpis.survey_event_type == "survey_response"
    assert config.identity.salt_env == "JOURNEYS_HASH_SALT"
    (source,) = config.sources
    assert (source.timestamp.format, source.timestamp.timezone) == ("iso8601", "UTC")
    assert (source.fields, source.constants, source.touchpoint_prefix, source.pii_fields) == (
        {}, {}, "", [],
    )


def test_base_dir_is_the_config_files_folder(tmp_path):
    """Relative source paths resolve against the config file's folder."""
    (tmp_path / "landing/web").mkdir(parents=True)
    (tmp_path / "landing/web/b.csv").write_text("x\n")
    (tmp_path / "landing/web/a.csv").write_text("x\n")
    config = _load(tmp_path, SOURCE)
    assert config.base_dir == tmp_path.resolve()
    assert config.source_files(config.sources[0]) == [
        tmp_path.resolve() / "landing/web/a.csv", tmp_path.resolve() / "landing/web/b.csv",
    ]


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", timedelta(minutes=30)),
    ("1 h", timedelta(hours=1)),
    ("7 days", timedelta(days=7)),
    ("1 day", timedelta(days=1)),
    ("90s", timedelta(seconds=90)),
    ("1.5h", timedelta(minutes=90)),
    ("2 minutes", timedelta(minutes=2)),
    (45, timedelta(seconds=45)),
    (2.5, timedelta(seconds=2.5)),
])
def test_durations(text, expected):
    """Durations are a number with a unit (s, m, h, d and their long names) or seconds."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["soon", "0m", "-5m", "5 weeks", "", True])
def test_bad_durations_are_refused(text):
    """Anything that is not a positive number with a known unit is refused."""
    with pytest.raises(ValueError):
        parse_duration(text)


def test_timeouts_read_as_durations(tmp_path):
    """session_timeout and journey_timeout accept duration text."""
    config = _load(tmp_path, SOURCE + "session_timeout: 45m\njourney_timeout: 7 days\n")
    assert (config.session_timeout, config.journey_timeout) == (
        timedelta(minutes=45), timedelta(days=7),
    )


def test_stage_rule_conditions_accept_a_value_or_a_list():
    """A stage rule condition given as one value is read as a one-value list."""
    config = Config.model_validate({
        "sources": [{"name": "web", "path": "x/*.csv", "format": "csv"}],
        "stages": {"rules": [{"stage": "awareness", "channel": "web",
                              "event_type": ["a", "b"]}]},
    })
    (rule,) = config.stages.rules
    assert (rule.channel, rule.event_type, rule.touchpoint) == (["web"], ["a", "b"], None)


def test_missing_file(tmp_path):
    """A missing config file is a ConfigError naming the file."""
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    message = str(info.value)
    assert str(tmp_path / "nope.yaml") in message
    assert "not found" in message.replace(str(tmp_path), "")


def test_yaml_that_is_not_a_mapping(tmp_path):
    """A YAML document that is not a mapping is refused, saying a mapping with `sources` is
    expected."""
    message = _error(tmp_path, "- just\n- a list\n")
    assert "mapping" in message
    assert "sources" in message


def test_invalid_yaml(tmp_path):
    """Unparseable YAML is a ConfigError naming the file and where it broke: the line, and
    the line itself with a caret under the spot."""
    message = _error(tmp_path, "sources: [unclosed\n")
    assert "YAML" in message
    assert "line 1, column 10" in message
    assert "    sources: [unclosed\n             ^" in message


def test_missing_sources(tmp_path):
    """A config without `sources` names the key."""
    message = _error(tmp_path, "session_timeout: 30m\n")
    assert "sources" in message
    assert "required" in message.lower()


def test_empty_sources(tmp_path):
    """An empty `sources` list names the key."""
    assert "sources" in _error(tmp_path, "sources: []\n")


def test_duplicate_source_names(tmp_path):
    """Two sources with one name are refused; the message names the `sources` key and the
    repeated name."""
    message = _error(tmp_path, SOURCE + "  - {name: web, path: other/*.csv, format: csv}\n")
    assert "web" in message
    assert "sources" in message


def test_unknown_canonical_field(tmp_path):
    """A `fields` mapping to an unknown canonical field names the key path and the field."""
    message = _error(tmp_path, "sources:\n  - {name: web, path: x/*.csv, format: csv, "
                               "fields: {user_id: uid}}\n")
    assert "sources.0.fields" in message
    assert "user_id" in message


def test_unknown_stage_in_rule(tmp_path):
    """A stage rule naming a stage not in `order` names the rule and the stage."""
    message = _error(tmp_path, SOURCE + "stages:\n  rules:\n"
                                        "    - {stage: awareness, event_type: page_view}\n"
                                        "    - {stage: delight, event_type: review}\n")
    assert "stages" in message
    assert "rules[1].stage" in message
    assert "delight" in message


def test_bad_time_zone(tmp_path):
    """An unknown time zone names the key path and the zone."""
    message = _error(tmp_path, "sources:\n  - {name: web, path: x/*.csv, format: csv, "
                               "timestamp: {timezone: Mars/Olympus}}\n")
    assert "sources.0.timestamp.timezone" in message
    assert "Mars/Olympus" in message


def test_bad_duration(tmp_path):
    """A duration that cannot be read names the key and the value."""
    message = _error(tmp_path, SOURCE + "session_timeout: soon\n")
    assert "session_timeout" in message
    assert "soon" in message


def test_bad_abandonment_window(tmp_path):
    """An abandonment window that is not a duration names the rule's key path."""
    message = _error(tmp_path, SOURCE + "abandonment:\n"
                                        "  - {name: cart, start: a, complete: b, window: later}\n")
    assert "abandonment.0.window" in message


def test_unknown_key(tmp_path):
    """An unknown key is refused and named (typos are not silently ignored)."""
    assert "session_timout" in _error(tmp_path, SOURCE + "session_timout: 30m\n")


def test_bad_source_format(tmp_path):
    """An unsupported file format names the key path."""
    message = _error(tmp_path, "sources:\n  - {name: web, path: x/*.xml, format: xml}\n")
    assert "sources.0.format" in message


def test_journey_timeout_shorter_than_session_timeout(tmp_path):
    """journey_timeout below session_timeout is refused, naming both keys."""
    message = _error(tmp_path, SOURCE + "session_timeout: 2h\njourney_timeout: 1h\n")
    assert "journey_timeout" in message
    assert "session_timeout" in message


def test_conversion_stage_must_be_in_order(tmp_path):
    """The conversion stage must be one of the ordered stages; the message names it."""
    message = _error(tmp_path, SOURCE + "stages: {order: [see, buy], conversion: purchase}\n")
    assert "stages" in message
    assert "purchase" in message


def test_field_both_mapped_and_fixed(tmp_path):
    """A canonical field both mapped in `fields` and fixed in `constants` is refused."""
    message = _error(tmp_path, "sources:\n  - {name: web, path: x/*.csv, format: csv, "
                               "fields: {channel: ch}, constants: {channel: web}}\n")
    assert "sources.0" in message
    assert "channel" in message


def test_model_validate_refuses_bad_values_too():
    """Config.model_validate applies the same rules as load_config (no file involved)."""
    with pytest.raises(ValidationError):
        Config.model_validate({"sources": [], "session_timeout": "30m"})


def _with_settings(tmp_path: Path, memory_limit: str):
    """A warehouse connection with the config's DuckDB settings applied."""
    from journey_core.warehouse import apply_settings, connect

    config = Config.model_validate({
        "sources": [{"name": "a", "path": "a/*.csv", "format": "csv"}],
        "duckdb": {"memory_limit": memory_limit, "temp_directory": "spill", "threads": 1},
        "base_dir": str(tmp_path)})
    con = connect(tmp_path / "wh")
    apply_settings(con, config)
    return con, config


def test_duckdb_settings_reach_the_connection(tmp_path):
    """memory_limit, temp_directory (relative to the config's folder) and threads are set on
    the warehouse connection; a memory limit that is no size is refused at load."""
    con, _ = _with_settings(tmp_path, memory_limit="1GB")
    limit = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
    assert limit.replace(" ", "") in ("953.6MiB", "1.0GB", "1GB", "0.9GiB")
    assert con.execute("select current_setting('temp_directory')").fetchall()[0][0] == \
        str(tmp_path / "spill")
    assert (tmp_path / "spill").is_dir()
    assert con.execute("select current_setting('threads')").fetchall()[0][0] == 1
    with pytest.raises(ValueError, match="memory_limit"):
        Config.model_validate({"sources": [{"name": "a", "path": "a/*.csv", "format": "csv"}],
                               "duckdb": {"memory_limit": "lots"}})


def test_settings_can_be_applied_again_after_spilling(tmp_path):
    """Every step applies the settings; DuckDB refuses to switch a spill folder it has used,
    so applying the same settings after a spill must be harmless."""
    from journey_core.warehouse import apply_settings

    con, config = _with_settings(tmp_path, memory_limit="64MB")
    con.execute("create table t as select md5(i::varchar) as m from range(2000000) t(i) "
                "order by m")
    apply_settings(con, config)
    assert con.execute("select count(*) from t").fetchall() == [(2_000_000,)]


def test_a_source_given_as_a_uri_is_read_only_by_ingest_on_spark(tmp_path):
    """`s3a://bucket/web/*.csv`: its folder and file-name patterns as Spark's reader lists
    them; a run whose ingest is DuckDB's refuses it by name, one on Spark does not look for a
    local folder."""
    from journey_core.config import source_patterns, source_uri
    from journey_core.ops import PipelineError, check_paths

    config = _load(tmp_path, "sources:\n  - {name: web, path: 's3a://bucket/in/web/*.csv', "
                   "format: csv}\n")
    source = config.sources[0]
    assert source_uri(source) == "s3a://bucket/in/web"
    assert source_patterns(source) == ["*.csv", "*.csv.gz", "*.csv.zst", "*.csv.zstd"]
    with pytest.raises(PipelineError, match=r"source 'web': s3a://bucket/in/web/\*\.csv is a "
                       r"URI, which only ingest with Spark's readers reads"):
        check_paths(config)
    check_paths(config, uris=True)
    assert source_uri(_load(tmp_path, SOURCE).sources[0]) is None


def test_a_run_on_spark_ingests_on_spark_unless_the_config_says_duckdb(tmp_path):
    """The Spark engine ingests with Spark's readers by default (`spark.ingest: spark`),
    whether the config or the command (`--engine spark`) chooses the engine; `spark.ingest:
    duckdb` keeps DuckDB's loader; the DuckDB engine never ingests on Spark."""
    default = _load(tmp_path, SOURCE)
    assert not default.ingest_on_spark()
    assert default.ingest_on_spark("spark")
    assert not default.ingest_on_spark("duckdb")
    on_spark = _load(tmp_path, SOURCE + "engine: spark\n")
    assert on_spark.ingest_on_spark() and not on_spark.ingest_on_spark("duckdb")
    by_duckdb = _load(tmp_path, SOURCE + "engine: spark\nspark: {ingest: duckdb}\n")
    assert not by_duckdb.ingest_on_spark() and not by_duckdb.ingest_on_spark("spark")
