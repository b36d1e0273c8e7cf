"""PostgreSQL timestamps that Python cannot hold: ``'infinity'``, ``'-infinity'``, and years
before 1 or after 9999 (PostgreSQL goes from 4713 BC to 294276 AD).

The tender backend's table has no CHECK constraint, so a run may carry one; psycopg refuses to
load it, and one such row would break every page that shows it. On tenderops' connections
they load as the largest and smallest ``datetime`` instead (the infinities), or one
microsecond inside them (a year Python has no ``datetime`` for), which the admin shows as
"infinity", "after the year 9999" and so on (``runs.admin.display.short_time``): "infinity"
for the year 12000 contradicted psql. The routines never compute with them: the querysets
that judge or delete runs exclude impossible start times (``TenderRunQuerySet.plausible``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

INFINITY = datetime.max.replace(tzinfo=UTC)
MINUS_INFINITY = datetime.min.replace(tzinfo=UTC)
AFTER_9999 = INFINITY - timedelta(microseconds=1)
BEFORE_YEAR_1 = MINUS_INFINITY + timedelta(microseconds=1)
_SPECIAL = {b"infinity": INFINITY, b"-infinity": MINUS_INFINITY}
BEYOND_PYTHON = (INFINITY, MINUS_INFINITY, AFTER_9999, BEFORE_YEAR_1)


def is_infinite(moment: datetime | None) -> bool:
    """An infinity or a year Python cannot hold: nothing to compute with."""
    return moment is not None and moment in BEYOND_PYTHON


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
                return BEFORE_YEAR_1 if raw.endswith(b" BC") else AFTER_9999

    adapters.register_loader("timestamptz", InfinityTolerantLoader)
