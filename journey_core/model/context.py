"""The run context: what every step of one run shares, built once per run.

The config, the run's as-of and partition, the models' bound parameters, the loaded models and
their table graph, the settings fingerprint, and (once the identity step has run) the
incremental plan. Stages receive it instead of each working it out again; the config tables
are written once per run (`prepare`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from journey_core.config import Config, micros
from journey_core.contract.vocabulary import model_parameters
from journey_core.model.config_tables import load_config_tables
from journey_core.model.engine import Engine
from journey_core.model.graph import TableGraph, build_graph
from journey_core.model.incremental import Plan, compute_as_of, fingerprint, plan
from journey_core.model.runner import Model, load_models


def model_params(config: Config, as_of: datetime) -> dict[str, Any]:
    """Every parameter a model may bind: the settings, as-of and the vocabulary."""
    return {
        "session_timeout_us": micros(config.session_timeout),
        "journey_timeout_us": micros(config.journey_timeout),
        "as_of": as_of,
        "survey_event_type": config.kpis.survey_event_type,
        **model_parameters(),
    }


@dataclass
class RunContext:
    """One run's shared state (see the module docstring)."""

    config: Config
    as_of: datetime
    partition: date | None
    full: bool
    models: dict[str, Model]
    graph: TableGraph
    params: dict[str, Any]
    fingerprint: str
    _plan: Plan | None = field(default=None, repr=False)
    _prepared: bool = field(default=False, repr=False)

    @classmethod
    def start(cls, engine: Engine, config: Config, *, partition: date | None = None,
              full: bool = False, as_of: datetime | None = None) -> RunContext:
        """The context of a run that starts now (after ingest: as-of follows the events)."""
        models = load_models()
        as_of = as_of or compute_as_of(engine, partition)
        return cls(config=config, as_of=as_of, partition=partition, full=full, models=models,
                   graph=build_graph(models), params=model_params(config, as_of),
                   fingerprint=fingerprint(config, models))

    def prepare(self, engine: Engine) -> None:
        """Write the config tables, once per run."""
        if not self._prepared:
            load_config_tables(engine, self.config)
            self._prepared = True

    def plan(self, engine: Engine) -> Plan:
        """The run's incremental plan, made once (after the identity step)."""
        if self._plan is None:
            self._plan = plan(engine, self.config, self.as_of, partition=self.partition,
                              full=self.full, fingerprint=self.fingerprint,
                              person_tables=self.graph.person_tables)
        return self._plan
