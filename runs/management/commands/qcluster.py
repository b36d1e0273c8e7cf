"""django-q2's ``qcluster``, refusing to start in one line when its broker does not answer.

With Redis down the cluster's sentinel died and the command ended in three tracebacks. The
exit status is the commands' "database failed" (3), which the systemd unit restarts on (a
broker comes back; a bad setting, 2, does not mend itself).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django.db import DatabaseError
from django_q.brokers import get_broker
from django_q.management.commands.qcluster import Command as DjangoQCluster
from redis.exceptions import RedisError

from runs.management.commands._arguments import EXIT_DATABASE_UNAVAILABLE, error_clause


class Command(DjangoQCluster):
    def handle(self, *args: Any, **options: Any) -> None:
        broker = get_broker()
        try:
            broker.ping()
        except (RedisError, DatabaseError, OSError) as error:
            raise CommandError(
                f"The cluster's broker does not answer ({error_clause(error)}). "
                "Check REDIS_URL (or, without it, DATABASE_URL).",
                returncode=EXIT_DATABASE_UNAVAILABLE,
            ) from error
        super().handle(*args, **options)
