"""The config tables: the settings (and the identifier precedence) as small tables the SQL
models join, written once per run.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from journey_core.config import Config, micros
from journey_core.contract.vocabulary import IDENTIFIER_TYPES
from journey_core.model.engine import Engine
from journey_core.warehouse.quoting import ident, qualified

#: The config tables, in `main`.
CONFIG_TABLES = ("cfg_stages", "cfg_stage_rules", "cfg_abandonment_rules", "cfg_segments",
                 "cfg_accounts", "cfg_identifier_types")


def config_tables(config: Config) -> dict[str, pa.Table]:
    """The settings the models join, by config table (`CONFIG_TABLES`)."""
    tables: dict[str, pa.Table] = {}
    stages = config.stages
    tables["cfg_stages"] = (pa.table({
        "stage": stages.order,
        "stage_rank": pa.array(range(1, len(stages.order) + 1), pa.int32()),
        "is_conversion": [s == stages.conversion for s in stages.order],
    }))
    rows: dict[str, list[Any]] = {"rule_index": [], "stage": [], "channel": [], "event_type": [],
                                  "touchpoint": []}
    for index, rule in enumerate(stages.rules, start=1):
        for channel in rule.channel or [None]:
            for event_type in rule.event_type or [None]:
                for touchpoint in rule.touchpoint or [None]:
                    for key, value in (("rule_index", index), ("stage", rule.stage),
                                       ("channel", channel), ("event_type", event_type),
                                       ("touchpoint", touchpoint)):
                        rows[key].append(value)
    tables["cfg_stage_rules"] = (pa.table(rows, schema=pa.schema([
        ("rule_index", pa.int32()), ("stage", pa.string()), ("channel", pa.string()),
        ("event_type", pa.string()), ("touchpoint", pa.string())])))
    tables["cfg_abandonment_rules"] = (pa.table({
        "rule": [r.name for r in config.abandonment],
        "start_event_type": [r.start for r in config.abandonment],
        "complete_event_type": [r.complete for r in config.abandonment],
        "window_us": [micros(r.window) for r in config.abandonment],
        "window_seconds": [int(r.window.total_seconds()) for r in config.abandonment],
    }, schema=pa.schema([("rule", pa.string()), ("start_event_type", pa.string()),
                         ("complete_event_type", pa.string()), ("window_us", pa.int64()),
                         ("window_seconds", pa.int64())])))
    dims = config.segments
    tables["cfg_segments"] = (pa.table({
        "dimension": [d.name for d in dims],
        "source_kind": ["property" if d.property else "column" for d in dims],
        "column_name": [d.column for d in dims],
        "json_path": [f"$.{d.property}" if d.property else None for d in dims],
        "scope": [d.scope for d in dims],
        "present_label": [d.present for d in dims],
        "missing_label": [d.missing for d in dims],
    }, schema=pa.schema([(name, pa.string()) for name in (
        "dimension", "source_kind", "column_name", "json_path", "scope", "present_label",
        "missing_label")])))
    role = config.accounts.role_property
    tables["cfg_accounts"] = (pa.table({"json_path": [f"$.{role}"] if role else []},
                                       schema=pa.schema([("json_path", pa.string())])))
    tables["cfg_identifier_types"] = (pa.table({
        "identifier_type": list(IDENTIFIER_TYPES),
        "precedence": pa.array(range(1, len(IDENTIFIER_TYPES) + 1), pa.int32())}))
    return tables


def load_config_tables(engine: Engine, config: Config) -> None:
    """The config tables, written into `main` for the models to join."""
    for table, data in config_tables(config).items():
        with engine.register(f"_{table}", data):
            engine.create_table(qualified("main", table), f"select * from {ident('_' + table)}")
