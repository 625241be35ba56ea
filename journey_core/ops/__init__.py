"""Operations: the one layer that composes the stages. A run (`run`: ingest, the run context,
each step of the table graph, publish), forgetting a person (`forget`: erase, rebuild, check),
and exporting rejected records for replay (`rejects`).

Layer 7, the top of the library: nothing in `journey_core` imports it.
"""

from journey_core.ops.run import (
    PipelineError,
    RunResult,
    check_paths,
    hand_over,
    ingest_files,
    ingest_files_on_spark,
    rebuild,
    run_pipeline,
    stage,
    start_run,
)

__all__ = ["PipelineError", "RunResult", "check_paths", "hand_over", "ingest_files",
           "ingest_files_on_spark", "rebuild", "run_pipeline", "stage", "start_run"]
