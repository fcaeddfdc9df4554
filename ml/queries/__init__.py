"""Every query a trained model can answer, declared once (see `ml.queries.base`).

Queries are listed here by explicit import; `register` adds one more (a plug-in, a test's
toy query). `queries_for(model_class)` is what a model kind answers, computed from what it
exposes.
"""

from __future__ import annotations

from typing import Any

from ml.core.model import model_kinds
from ml.queries.base import FORMATS, GIF, JSON, NPY, PNG, Query, exposes
from ml.queries.confusion import CONFUSION_MATRIX
from ml.queries.decisions import ACTIONS, Q_VALUES, REWARDS, VALUES
from ml.queries.evaluation import EVALUATE
from ml.queries.explanations import ACTIVATIONS, EMBEDDING, GRAD_CAM, SALIENCY
from ml.queries.generative import DISCRIMINATOR, DISCRIMINATOR_SCORES, INTERPOLATIONS, SAMPLES
from ml.queries.gradient_flow import GRADIENT_FLOW
from ml.queries.render import RENDER
from ml.queries.rollouts import ROLLOUTS

QUERIES: dict[str, Query[Any, Any]] = {
    q.name: q
    for q in (
        SAMPLES,
        INTERPOLATIONS,
        DISCRIMINATOR,
        DISCRIMINATOR_SCORES,
        Q_VALUES,
        ACTIONS,
        VALUES,
        REWARDS,
        EVALUATE,
        ROLLOUTS,
        RENDER,
        SALIENCY,
        GRAD_CAM,
        ACTIVATIONS,
        EMBEDDING,
        CONFUSION_MATRIX,
        GRADIENT_FLOW,
    )
}


def register(query: Query[Any, Any]) -> Query[Any, Any]:
    """Add a query; its name must be new."""
    if query.name in QUERIES and QUERIES[query.name] is not query:
        raise ValueError(f"a query named {query.name!r} is already registered")
    QUERIES[query.name] = query
    return query


def get_query(name: str) -> Query[Any, Any]:
    try:
        return QUERIES[name]
    except KeyError:
        raise KeyError(f"unknown query {name!r}; known: {', '.join(sorted(QUERIES))}") from None


def queries_for(model_class: type) -> tuple[str, ...]:
    """Names of the queries a model class answers."""
    return tuple(name for name, q in QUERIES.items() if q.supports(model_class))


def queries_for_kind(kind: str) -> tuple[str, ...]:
    """Names of the queries the model kind called `kind` answers (none for an unknown kind)."""
    model_class = model_kinds().get(kind)
    return queries_for(model_class) if model_class is not None else ()


__all__ = [
    "FORMATS",
    "GIF",
    "JSON",
    "NPY",
    "PNG",
    "QUERIES",
    "Query",
    "exposes",
    "get_query",
    "queries_for",
    "queries_for_kind",
    "register",
]
