"""Activity wrappers that inject faults (after or before the real side effect), for the tests and the soak."""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError


def activity_name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__temporal_activity_definition").name)


def as_activity(real: Callable[..., Any], body: Callable[..., Any]) -> Callable[..., Any]:
    """`body` registered as the activity `real` is: same name, same input and result types for the converter."""
    hints = typing.get_type_hints(real)
    body.__annotations__ = {"input": hints["input"], "return": hints["return"]}
    return activity.defn(name=activity_name(real))(body)


def failing(real: Callable[..., Any], *, when: Callable[[object], bool] = lambda _: True, before: bool = False
            ) -> Callable[..., Any]:
    """The same activity, failing permanently right after (or before) doing its real work when `when(input)`:
    a crash after the side effect is the case a compensation must undo."""
    name = activity_name(real)

    async def fault(input: Any) -> Any:
        if before and when(input):
            raise ApplicationError(f"injected fault before {name}", type="InjectedFault", non_retryable=True)
        result = await real(input)
        if when(input):
            raise ApplicationError(f"injected fault after {name}", type="InjectedFault", non_retryable=True)
        return result

    return as_activity(real, fault)


def once(predicate: Callable[[object], bool] = lambda _: True) -> Callable[[object], bool]:
    """True the first time `predicate(input)` holds, then never: the compensation's own call succeeds."""
    fired: list[bool] = []

    def check(input: object) -> bool:
        if fired or not predicate(input):
            return False
        fired.append(True)
        return True

    return check
