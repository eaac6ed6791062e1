"""Options of ``study synth`` / :func:`study.synth.make_cohort`; the range rules live in these types only."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from study.errors import Problem, StudyError
from study.options import Seed
from study.synth.readers import DEFAULT_READERS

#: a probability
Probability = Annotated[float, Field(ge=0, le=1)]
#: a simulated reader: (reader_id, group, probability of a grading error, share of the non-core cases read)
Reader = tuple[str, str, Probability, Probability]


class SynthOptions(BaseModel):
    """What a synthetic cohort is made of (see :func:`study.synth.make_cohort`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cases: Annotated[StrictInt, Field(ge=1, description="number of images (cases)")]
    seed: Seed = 0
    image_size: Annotated[StrictInt, Field(ge=128, description="square image side in pixels")] = 512
    exclusion_rate: Annotated[float, Field(ge=0, lt=1, description="share of cases planted to fail")] = 0.15
    readers: tuple[Reader, ...] = tuple(DEFAULT_READERS)
    workers: Annotated[StrictInt, Field(ge=1, description="processes drawing images")] = 1
    aided_session: bool = Field(False, description="also write a model-aided reading session (modality, confidence)")

    @field_validator("readers")
    @classmethod
    def _at_least_one_reader(cls, readers: tuple[Reader, ...]) -> tuple[Reader, ...]:
        if not readers:
            raise ValueError("list at least one reader")
        return readers

    @classmethod
    def checked(cls, **values: object) -> SynthOptions:
        """Validate ``values`` (``None``: the default); a :class:`StudyError` names every bad option as its
        flag (``--cases``)."""
        try:
            return cls.model_validate({k: v for k, v in values.items() if v is not None})
        except ValidationError as e:
            raise StudyError([Problem("make_cohort", "--" + str(err["loc"][0]).replace("_", "-"),
                                      f"{err['input']!r}: {err['msg']}") for err in e.errors()]) from None
