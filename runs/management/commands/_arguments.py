"""argparse types for the commands: the bounds are the routines' own, the errors are readable."""

import argparse
from collections.abc import Callable
from typing import Any

from runs.maintenance import InvalidParameter, check_kinds, check_positive_int


def bounded_int(name: str, maximum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
        return _checked(check_positive_int, value, name, maximum)

    return parse


def kind(raw: str) -> str:
    return _checked(check_kinds, [raw])[0]


def _checked(check: Callable[..., Any], *args: Any) -> Any:
    try:
        return check(*args)
    except InvalidParameter as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def count(maximum: int) -> Callable[[str], int]:
    """A whole number from 0 to ``maximum``."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
        if not 0 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"expected 0 to {maximum}, got {value}")
        return value

    return parse
