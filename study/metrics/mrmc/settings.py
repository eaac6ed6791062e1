"""The MRMC options of one call: :class:`study.options.MRMCOptions` plus keyword overrides, checked at once.

Range and choice rules live only in the option types (:mod:`study.options`); this module turns
their violations, and the two rules that tie options together (DBM needs the jackknife; a binary
figure of merit needs a threshold), into one :class:`~study.errors.StudyError` naming each option
as the command line spells it.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from study.errors import Problem, StudyError
from study.options import MRMCOptions, StatisticsOptions

__all__ = ["FLAGS", "resolve_options"]

#: option -> its command-line flag (``study evaluate mrmc``), where the two spell it differently
FLAGS = {"n_bootstrap": "--bootstrap-replicates"}


def _flag(field: str) -> str:
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def _expected(err: Any) -> str:
    """What the option type expects, in words, from a pydantic error."""
    ctx = err.get("ctx") or {}
    words = {"literal_error": lambda: f"one of {ctx['expected']}",
             "greater_than_equal": lambda: f"at least {ctx['ge']}",
             "less_than_equal": lambda: f"at most {ctx['le']}",
             "greater_than": lambda: f"more than {ctx['gt']}",
             "less_than": lambda: f"less than {ctx['lt']}"}
    return words[err["type"]]() if err["type"] in words else err["msg"]


def _description(field: str, expected: str) -> str:
    """The option type's description, when it says more than ``expected``."""
    info = MRMCOptions.model_fields.get(field) or StatisticsOptions.model_fields.get(field)
    if info is None or not info.description or expected in info.description:
        return ""
    return f" ({info.description})"


def resolve_options(options: MRMCOptions, **changes: Any) -> MRMCOptions:
    """``options`` with ``changes`` (``None`` values ignored), validated by the option types.

    Raises
    ------
    StudyError
        Listing every bad option (``--confidence``, ``--bootstrap-replicates``, ...) with the
        value given and what is expected, and the combinations that do not apply (``--method dbm``
        with a covariance other than the jackknife; a binary ``--fom`` without ``--threshold``).
    """
    data = options.model_dump()
    stats = dict(data["statistics"])
    for key, value in changes.items():
        if value is None:
            continue
        if key in StatisticsOptions.model_fields:
            stats[key] = value
        else:
            data[key] = value
    data["statistics"] = stats
    problems: list[Problem] = []
    try:
        resolved = MRMCOptions.model_validate(data)
    except ValidationError as e:
        resolved = None
        for err in e.errors():
            field, expected = str(err["loc"][-1]), _expected(err)
            problems.append(Problem(_flag(field), "", f"{err['input']!r}; expected {expected}"
                                                      f"{_description(field, expected)}"))
    method, covariance, fom = data["method"], data["covariance"], data["fom"]
    if method == "dbm" and covariance != "jackknife":
        problems.append(Problem("--covariance", "", f"{covariance!r} with --method dbm; DBM works on jackknife "
                                                    "pseudovalues, so only 'jackknife' applies"))
    if fom != "wilcoxon" and data["threshold"] is None and not any(p.file == "--fom" for p in problems):
        problems.append(Problem("--threshold", "", f"missing; fom {fom!r} needs a cut point (rating >= threshold is positive)"))
    if problems or resolved is None:
        raise StudyError(problems)
    return resolved
