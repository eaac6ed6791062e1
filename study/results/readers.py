"""Typed ``readers`` block of ``results.json``: who read, with what experience, how much.

Built by :func:`study.readers.characteristics.readers_block` from the study's readings
(``readings.parquet``) and, when the readings come from the reading tool's database, the
readers' characteristics recorded at ``study readers init`` (experience, specialty).
"""

from __future__ import annotations

from pydantic import Field

from study.results.base import ResultModel

__all__ = ["ReaderRow", "ReadersBlock"]


class ReaderRow(ResultModel):
    """One reader of the study.

    Attributes
    ----------
    reader_id, reader_group : str
        As in the readings ("" when the readings name no group).
    years_of_experience : float or None
        From the readers file of ``study readers init`` (None when not recorded).
    specialty : str
        From the readers file ("" when not recorded).
    certification, reading_conditions : str
        From the readers file's optional columns of those names (board certification; display,
        room, time limits...); "" when not recorded (and then left out of the JSON).
    n_unaided, n_aided : int
        Readings of the reader in each session (assessable or not).
    n_not_assessable : int
        Readings marked not assessable (no grade; left out of the analyses).
    median_seconds : float or None
        Median time per case over the reader's readings that record it.
    """

    reader_id: str
    reader_group: str
    years_of_experience: float | None = None
    specialty: str = ""
    certification: str = Field("", exclude_if=lambda v: v == "")
    reading_conditions: str = Field("", exclude_if=lambda v: v == "")
    n_unaided: int
    n_aided: int
    n_not_assessable: int
    median_seconds: float | None = None


class ReadersBlock(ResultModel):
    """The study's readers and where their characteristics came from.

    Attributes
    ----------
    readers : list of ReaderRow
        Sorted by reader id.
    source : str
        ``"reading database"`` (characteristics recorded) or ``"readings file"`` (groups only).
    analysed : str
        Which readings the agreement and MRMC analyses use (unaided, assessable).
    """

    readers: list[ReaderRow]
    source: str
    analysed: str = ("agreement and per-model MRMC: unaided, assessable readings; aided readings: the "
                     "aided-versus-unaided comparison (mrmc.ustat)")
