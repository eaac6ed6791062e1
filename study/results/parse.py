"""Validate parsed JSON as a results model, with errors a user can act on.

Every problem becomes a :class:`study.errors.Problem` naming the file, the key path inside it
and what the model expects, so a malformed step output or ``results.json`` ends in a
``StudyError`` (exit status 2, no traceback).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from study.errors import Problem, StudyError

__all__ = ["parse_model"]

_M = TypeVar("_M", bound=BaseModel)


def parse_model(model: type[_M], data: Any, *, source: str, where: str = "") -> _M:
    """``data`` validated as ``model``.

    Parameters
    ----------
    model : the results model (e.g. :class:`study.results.flow.Flow`).
    data : the parsed JSON.
    source : the file it was read from (named in the errors).
    where : the key path of ``data`` inside that file (e.g. ``"flow"`` in results.json).

    Raises
    ------
    StudyError
        One problem per validation error: file, key path, message and the model expected.
    """
    try:
        return model.model_validate(data)
    except ValidationError as e:
        expected = f"{model.__module__}.{model.__name__}"
        problems = []
        for err in e.errors():
            path = ".".join(str(p) for p in (*([where] if where else []), *err["loc"])) or "(top level)"
            problems.append(Problem(source, path, f"{err['msg']} (expected by {expected})"))
        raise StudyError(problems) from None
