"""What list endpoints share: `sort` by a column's name ("-" before it for descending) and
tag filters. (An unknown query parameter is a 422 on every route: `api.strict_input`.)"""

from __future__ import annotations

from collections.abc import Iterable

from api.errors import ApiError


def sort_pattern(columns: Iterable[str]) -> str:
    """The regular expression of a `sort` query parameter over `columns`."""
    return f"^-?({'|'.join(sorted(columns))})$"


def tag_filters(tags: list[str] | None) -> dict[str, str | None]:
    """`tag=team=rl` (that value) or `tag=team` (any value), repeatable, as {key: value}."""
    found: dict[str, str | None] = {}
    for tag in tags or []:
        key, sep, value = tag.partition("=")
        if not key:
            raise ApiError(
                422, "invalid_tag", f"a tag filter is key=value or key; got {tag!r}", field="tag"
            )
        found[key] = value if sep else None
    return found
