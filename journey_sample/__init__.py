"""The sample generator: a deterministic, realistic multichannel sample (`data/sample/`) and its
ground truth, for the README's commands and the end-to-end tests.

It imports nothing from `journey_core`: the ground truth is worked out from the generator's own
plan, never by the pipeline it checks.
"""

from journey_sample.generate import SOURCES, generate_sample

__all__ = ["SOURCES", "generate_sample"]
