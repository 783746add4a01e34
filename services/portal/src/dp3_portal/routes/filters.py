"""Query-string filters shared by the gallery and the API."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from dp3_portal import camera_filter
from dp3_portal.catalog import BadQuery, PhotoFilter


def _date(value: str, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadQuery(f"{name}: expected YYYY-MM-DD, got {value!r}") from None


@dataclass
class FilterParams:
    owner: str
    model: str
    status: str
    date_from: str
    date_to: str
    q: str

    def build(self) -> PhotoFilter:
        """Raises BadQuery with a sentence for the user."""
        return PhotoFilter(
            owner=self.owner.strip(),
            model=camera_filter.wanted(self.model),
            status=self.status.strip(),
            date_from=_date(self.date_from.strip(), "date_from"),
            date_to=_date(self.date_to.strip(), "date_to"),
            text=self.q.strip(),
        )


def filter_params(
    owner: Annotated[str, Query(description="photographer folder name, e.g. JAEGER-NICHOLAS", max_length=200)] = "",
    model: Annotated[
        str,
        Query(
            alias=camera_filter.PARAM,
            description=camera_filter.PARAM_HELP,
            max_length=camera_filter.PARAM_MAX_LENGTH,
        ),
    ] = "",
    status: Annotated[
        str, Query(description="Detected, Processed, Archived, Collected, Failed, Duplicate, or 'failed'")
    ] = "",
    date_from: Annotated[str, Query(description="first capture day, YYYY-MM-DD (site time zone)")] = "",
    date_to: Annotated[str, Query(description="last capture day, YYYY-MM-DD (site time zone)")] = "",
    q: Annotated[str, Query(description="part of the file name", max_length=200)] = "",
) -> FilterParams:
    return FilterParams(owner, model, status, date_from, date_to, q)


FilterDep = Annotated[FilterParams, Depends(filter_params)]
