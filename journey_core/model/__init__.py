"""The model layer: the SQL models of `sql/` (`runner`), the table graph derived from them
(`graph`), the run context shared by every step of a run (`context`), building a step into
staging (`build`), incremental runs (`incremental`), the config tables (`config_tables`), and
the engine seam every SQL statement goes through (`engine`), and the Spark engine behind it
(`spark`, imported on its own: it needs the optional `pyspark`).

Layer 5: imports `contract`, `config`, `warehouse` and `identity` (the identity step).
"""

from journey_core.model.build import STAGED_PREFIX, build_step, clear_staging, staged_name
from journey_core.model.context import RunContext
from journey_core.model.engine import DuckDBEngine, Engine
from journey_core.model.graph import Step, TableGraph, build_graph, pipeline_graph
from journey_core.model.runner import Model, ModelError, load_models, run_model

__all__ = ["STAGED_PREFIX", "DuckDBEngine", "Engine", "Model", "ModelError", "RunContext", "Step",
           "TableGraph", "build_graph", "build_step", "clear_staging", "load_models",
           "pipeline_graph", "run_model", "staged_name"]
