"""argparse types for the commands: the bounds are the routines' own, the errors are readable."""

import argparse
from collections.abc import Callable

from runs.limits import InvalidParameter, Limit
from runs.maintenance import check_kinds


def bounded_int(name: str, limit: Limit) -> Callable[[str], int]:
    """A whole number within ``limit``, checked by the one parser the routines use."""

    def parse(raw: str) -> int:
        try:
            return limit.parse(raw, name)
        except InvalidParameter as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def kind(raw: str) -> str:
    try:
        return check_kinds([raw])[0]
    except InvalidParameter as error:
        raise argparse.ArgumentTypeError(str(error)) from None
