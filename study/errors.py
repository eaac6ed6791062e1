"""User-facing errors.

A :class:`StudyError` is raised for anything the *user* can fix: a bad input file, a bad
option, an inconsistent protocol. The command line turns it into a message and exit
status 2, never a traceback. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input.

    Attributes
    ----------
    file : str
        The file (or option) the problem is in.
    where : str
        Row number (``row 12``), JSON path (``annotations[3].bbox``) or field name; may be ``""``.
    message : str
        What is wrong, including the offending value and what is expected.
    """

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        loc = f"{self.file}: {self.where}" if self.where else self.file
        return f"{loc}: {self.message}"


class StudyError(Exception):
    """An error in the user's inputs or options; carries one or more :class:`Problem`."""

    def __init__(self, problems: "Problem | str | list[Problem]", *, file: str = "", where: str = ""):
        if isinstance(problems, str):
            problems = [Problem(file, where, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def raise_if(problems: list[Problem]) -> None:
    """Raise a :class:`StudyError` carrying *all* ``problems`` when the list is not empty."""
    if problems:
        raise StudyError(problems)


def validation_problems(file: str, err: "ValidationError", *, unknown_key_hint: str) -> list[Problem]:
    """A pydantic ``ValidationError`` as problems: one per error, located by its key path.

    ``unknown_key_hint`` ends the message of an unknown key (where the valid keys are documented).
    """
    out = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown key (value {e.get('input')!r}); {unknown_key_hint}"
        elif "input" in e and not isinstance(e["input"], (dict, list)):
            msg = f"{msg} (got {e['input']!r})"
        out.append(Problem(file, where, msg))
    return out
