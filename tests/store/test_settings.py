"""Settings whose defaults mirror constants of `ml`, written out so reading settings does not
import ml: they must agree."""

from __future__ import annotations

from ml.core.cost import DEFAULT_MAX_JOB_COST, DEFAULT_MAX_STEP_COST
from store.settings import Settings


def test_cost_bounds_default_to_ml_constants() -> None:
    fields = Settings.model_fields
    assert fields["max_job_cost"].default == DEFAULT_MAX_JOB_COST
    assert fields["max_step_cost"].default == DEFAULT_MAX_STEP_COST
