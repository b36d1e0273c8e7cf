import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from runs.management.commands._arguments import EXIT_BAD_USAGE, RoutineCommand


class Command(RoutineCommand):
    help = "Create (or reset) the demo superuser 'admin' with a fresh password, printed once."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "demo_admin resets the password of the superuser 'admin'; it runs only with "
                "DJANGO_DEBUG=true (as `make demo` sets it). Nothing was changed. An "
                "administrator of a real database: manage.py createsuperuser.",
                returncode=EXIT_BAD_USAGE,
            )
        password = secrets.token_urlsafe(12)
        user, _created = get_user_model().objects.get_or_create(
            username="admin", defaults={"email": "admin@example.invalid"}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"Admin login: admin / {password}")
