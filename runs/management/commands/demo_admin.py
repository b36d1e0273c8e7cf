import secrets

from django.contrib.auth import get_user_model

from runs.management.commands._arguments import RoutineCommand


class Command(RoutineCommand):
    help = "Create (or reset) the demo superuser 'admin' with a fresh password, printed once."

    def handle(self, *args, **options) -> None:
        password = secrets.token_urlsafe(12)
        user, _created = get_user_model().objects.get_or_create(
            username="admin", defaults={"email": "admin@example.invalid"}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"Admin login: admin / {password}")
