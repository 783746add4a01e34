"""The gallery's camera filter, whole: what a photo's camera is, how the filter matches it, where it is kept. Pure.

* A photo's camera is the ``model`` of the EXIF subset its render reports in
  ``meta.json`` (:data:`dp3.formats.EXIF_MODEL`, read on the worker by
  ``dp3/render_task.py``), stripped of blanks and NULs: :func:`camera_of`.
  A photo without one has ``""`` and is shown only under "all".
* The filter's value is the query parameter :data:`PARAM` of the gallery's
  form and of ``GET /api/photos``, stripped (:func:`wanted`); it matches the
  camera exactly, case and all. Empty means every camera.
* The catalog keeps the camera in the photo's :data:`FIELD` and pages a
  filtered gallery by :data:`PAGING_KEY` (camera + separator + ``sort_key``,
  written by ``fold.with_keys``, queried by ``catalog.photo_query``; see
  docs/portal.md). The cameras the form offers are the :data:`FACET` facets
  the recorder writes as events bring new ones.
"""

from __future__ import annotations

from typing import Any

from dp3 import formats

PARAM = "model"
"""The query parameter (gallery form and API)."""
PARAM_HELP = "camera model, exactly as in the EXIF"
PARAM_MAX_LENGTH = 200

FIELD = "model"
"""The photo document's field holding its camera (also the API's ``model``)."""
PAGING_KEY = "k_model"
"""The indexed ``camera + separator + sort_key`` field a camera-filtered page is one range of."""
FACET = "model"
"""The facet kind listing every camera seen, for the form's choices."""

_META_KEYS = (formats.EXIF_MODEL, "Model", "camera_model")
"""Where a render's metadata may hold the model: today's key first, then older spellings."""


def camera_of(meta: dict[str, Any] | None) -> str:
    """The photo's camera from its render's metadata (flat, or under ``exif``); ``""`` when it has none."""
    if not meta:
        return ""
    for holder in (meta, meta.get(formats.META_EXIF) or {}):
        if isinstance(holder, dict):
            for key in _META_KEYS:
                value = holder.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip().strip("\x00")
    return ""


def wanted(param: str) -> str:
    """The camera a request asks for (``""``: every camera)."""
    return param.strip()
