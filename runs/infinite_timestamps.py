"""PostgreSQL timestamps that Python cannot hold: ``'infinity'``, ``'-infinity'``, and years
before 1 or after 9999 (PostgreSQL goes from 4713 BC to 294276 AD).

The tender backend's table has no CHECK constraint, so a run may carry one; psycopg refuses to
load it, and one such row would break every page that shows it. On tenderops' connections
they load as the largest and smallest ``datetime`` instead, which the admin shows as
"infinity" and "-infinity" (``runs.admin.display.short_time``). The routines never compute
with them: the querysets that judge or delete runs exclude impossible start times
(``TenderRunQuerySet.plausible``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

INFINITY = datetime.max.replace(tzinfo=UTC)
MINUS_INFINITY = datetime.min.replace(tzinfo=UTC)
_SPECIAL = {b"infinity": INFINITY, b"-infinity": MINUS_INFINITY}


def is_infinite(moment: datetime | None) -> bool:
    return moment is not None and moment in (INFINITY, MINUS_INFINITY)


def tolerate_infinite_timestamps(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: wrap the timestamptz loader Django registered."""
    if connection.vendor != "postgresql":
        return
    from psycopg import DataError
    from psycopg.pq import Format

    adapters = connection.connection.adapters
    django_loader = adapters.get_loader(adapters.types["timestamptz"].oid, Format.TEXT)

    class InfinityTolerantLoader(django_loader):  # keeps Django's ``timezone`` attribute
        def load(self, data: Any) -> datetime:
            raw = bytes(data)
            special = _SPECIAL.get(raw)
            if special is not None:
                return special
            try:
                return super().load(data)
            except DataError:  # a year Python has no datetime for
                return MINUS_INFINITY if raw.endswith(b" BC") else INFINITY

    adapters.register_loader("timestamptz", InfinityTolerantLoader)
