"""``Annotated`` bounds on task parameters, checked before a task is stored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import pytest
from annotated_types import Le
from pydantic import Field

from tasks import InvalidArgumentsError, Tasks

if TYPE_CHECKING:
    from decimal import Decimal  # only for type checkers: never evaluated

tasks = Tasks()
Small = Annotated[int, Field(ge=0, le=10)]


@tasks.task(name="bounded")
async def bounded(
    count: Small, label: Annotated[str, Field(max_length=5)] = "x", note: str = ""
) -> None: ...


@tasks.task(name="many")
async def many(*values: Annotated[float, Le(1)], **named: Annotated[int, Le(3)]) -> None: ...


@tasks.task(name="unresolvable")
async def unresolvable(amount: Decimal, count: Small) -> None: ...


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((11,), {}, "argument 'count' of task bounded: Input should be less than or equal to 10"),
        ((-1,), {}, "'count'"),
        (("3",), {}, "'count' of task bounded: Input should be a valid integer"),
        ((True,), {}, "'count'"),
        ((2.5,), {}, "'count'"),
        ((1,), {"label": "toolong"}, "'label' of task bounded: String should have at most 5"),
    ],
)
def test_out_of_bounds_arguments_are_refused_naming_the_argument(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgumentsError) as error:
        bounded.call(*args, **kwargs)  # type: ignore[arg-type]
    assert message in str(error.value)


def test_arguments_within_bounds_are_stored_as_given() -> None:
    call = bounded.call(10, note="no bound on me" * 100)
    assert (call.args, call.kwargs) == ((10,), {"note": "no bound on me" * 100})
    assert bounded.call(0, "abcde").args == (0, "abcde")


def test_variadic_parameters_bound_each_value() -> None:
    many.call(0.5, 1, a=3)
    with pytest.raises(InvalidArgumentsError, match="'values'"):
        many.call(0.5, 2.0)
    with pytest.raises(InvalidArgumentsError, match="'named'"):
        many.call(a=4)


def test_names_only_type_checkers_see_are_skipped() -> None:
    unresolvable.call(object(), 3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentsError, match="'count'"):
        unresolvable.call(object(), 30)  # type: ignore[arg-type]
