"""Content negotiation: which media type to answer in, from `Accept` (with q-values) or
`?format=` (json, npy, png), among those an operation offers; 406 naming them otherwise.
The declared queries (`api.routes.queries`) and the training curves (`api.routes.metrics`)
answer through it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Query

from api.errors import ApiError
from ml.queries import FORMATS, JSON

Format = Annotated[
    str | None,
    Query(
        description="Media type by name (json, npy, png, gif), instead of an Accept header.",
        pattern="^[a-z]+$",
        max_length=8,
    ),
]


def _accepted(header: str) -> list[str]:
    """Media ranges of an Accept header, best first (q=0 ranges dropped)."""
    ranked = []
    for position, part in enumerate(header.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if media and q > 0:
            ranked.append((-q, position, media.lower()))
    return [media for _, _, media in sorted(ranked)]


def negotiate_media(
    what: str, offered: Sequence[str], accept: str | None, format: str | None
) -> str:
    """The media type `what` answers in: `format` by name if given, else the best of
    `Accept` that it offers (JSON for no header or a wildcard)."""
    if format is not None:
        wanted = FORMATS.get(format)
        if wanted is not None and wanted in offered:
            return wanted
        names = ", ".join(k for k, v in FORMATS.items() if v in offered)
        raise ApiError(
            406, "not_acceptable", f"{what} answers format {names}, not {format!r}", field="format"
        )
    if not accept:
        return JSON
    for media in _accepted(accept):
        if media in ("*/*", "application/*") and JSON in offered:
            return JSON
        for candidate in offered:
            if media == candidate or (media.endswith("/*") and candidate.startswith(media[:-1])):
                return candidate
    raise ApiError(
        406,
        "not_acceptable",
        f"{what} answers {', '.join(offered)}; the Accept header allows none of them",
        field="accept",
    )
