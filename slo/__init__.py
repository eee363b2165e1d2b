"""The SLO harness: specs, burn-rate rules, the evaluator, migration-phase gates and load scenarios."""

from slo.evaluate import Evaluation, evaluate
from slo.scoring import Verdict
from slo.spec import ServiceSpec, SpecError, load_spec, load_specs

__all__ = ["Evaluation", "ServiceSpec", "SpecError", "Verdict", "evaluate", "load_spec", "load_specs"]
