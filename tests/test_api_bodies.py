"""The API refuses a body it does not read: JSON, forms, multipart, chunked, in any charset;
never a 500, nothing changed."""

import http.client
import json

import pytest

from runs.models import MaintenanceAction
from tests.api_client import CLEANUP, HEALTH, TOKEN
from tests.conftest import statuses

pytestmark = pytest.mark.usefixtures("api_token")


def test_a_body_is_refused_and_changes_nothing(client, bearer, stuck):
    response = client.post(
        CLEANUP, data='{"dry_run": true}', content_type="application/json", **bearer
    )
    assert response.status_code == 400
    form = client.post(CLEANUP, data={"dry_run": "1"}, **bearer)
    assert form.status_code == 400
    assert statuses(stuck) == ["running"]


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_is_refused_and_changes_nothing(live_server, stuck):
    """Streaming clients send a body in chunks, without Content-Length: Django's request
    then reads as empty, and a {"dry_run": true} body ran a real cleanup."""
    host, port = live_server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    body = b'{"dry_run": true}'
    connection.putrequest("POST", CLEANUP)
    for name, value in {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
    }.items():
        connection.putheader(name, value)
    connection.endheaders(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status == 400 and "takes no body" in answer["error"]
    assert statuses(stuck) == ["running"]
    assert not MaintenanceAction.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_health_check_announcing_a_body_it_never_sends_is_refused_at_once(live_server):
    """A GET that says Content-Length: 5 and sends nothing: reading the body to see whether
    there was one held a gunicorn worker until its timeout (30 s), then a bare HTML 500."""
    host, port = live_server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=20)
    connection.putrequest("GET", HEALTH)
    connection.putheader("Authorization", f"Bearer {TOKEN}")
    connection.putheader("Content-Length", "5")
    connection.endheaders()  # and no body: the server must not wait for it
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status == 400 and "takes no body" in answer["error"]


def test_a_body_the_server_cannot_parse_is_a_json_400(client, bearer, stuck):
    response = client.generic(
        "POST", CLEANUP, b"--x\r\n", content_type="multipart/form-data", **bearer
    )  # no boundary: Django cannot read it as a form
    assert response.status_code == 400 and "error" in response.json()
    assert statuses(stuck) == ["running"]


@pytest.mark.parametrize(
    "body",
    [
        # A part without a name: Django's form has no field, the body is there all the same.
        b"--xx\r\nContent-Disposition: form-data\r\nContent-Type: application/json\r\n\r\n"
        b'{"dry_run": true}\r\n--xx--\r\n',
        b"garbage",
    ],
)
def test_a_multipart_body_without_fields_is_refused_too(client, bearer, stuck, body):
    response = client.generic(
        "POST", CLEANUP, body, content_type="multipart/form-data; boundary=xx", **bearer
    )
    assert response.status_code == 400 and "takes no body" in response.json()["error"]
    assert statuses(stuck) == ["running"]
    assert not MaintenanceAction.objects.exists()


def test_an_empty_multipart_form_is_no_body(client, bearer, stuck):
    response = client.generic(
        "POST",
        f"{CLEANUP}?dry_run=1",
        b"--xx--\r\n",
        content_type="multipart/form-data; boundary=xx",
        **bearer,
    )
    assert response.status_code == 200 and response.json()["dry_run"] is True


@pytest.mark.parametrize("charset", ["utf-16", "gbk", "iso-8859-1", "UTF8"])
def test_a_form_in_another_charset_is_a_json_400(client, bearer, stuck, charset, settings):
    settings.DEBUG = True  # the README's try-it setup: once a 500 from the debug page
    content_type = f"application/x-www-form-urlencoded; charset={charset}"
    response = client.generic("POST", CLEANUP, b"a=1", content_type=content_type, **bearer)
    assert response.status_code == 400 and "could not be read" in response.json()["error"]
    assert statuses(stuck) == ["running"]


def test_too_many_files_are_a_json_400(client, bearer, stuck, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    parts = b"".join(
        b'--xx\r\nContent-Disposition: form-data; name="f%d"; filename="f%d.txt"\r\n\r\nx\r\n'
        % (n, n)
        for n in range(3)
    )
    response = client.generic(
        "POST",
        CLEANUP,
        parts + b"--xx--\r\n",
        content_type="multipart/form-data; boundary=xx",
        **bearer,
    )
    assert response.status_code == 400 and "could not be read" in response.json()["error"]
    assert statuses(stuck) == ["running"]


def test_a_get_with_a_form_body_is_refused_too(client, bearer, db):
    response = client.generic(
        "GET", HEALTH, b"a=1", content_type="application/x-www-form-urlencoded", **bearer
    )
    assert response.status_code == 400 and "takes no body" in response.json()["error"]


def test_a_head_answer_has_the_get_headers_and_no_body(db, settings):
    """Through the WSGI application as gunicorn calls it (the test client and runserver drop
    a HEAD body themselves): gunicorn logged a warning for every body it had to drop."""
    from io import BytesIO

    from django.core.handlers.wsgi import WSGIHandler

    def answer(method: str) -> tuple[str, dict, bytes]:
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": HEALTH,
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "wsgi.input": BytesIO(),
            "wsgi.url_scheme": "http",
        }
        started = {}
        body = b"".join(
            WSGIHandler()(environ, lambda status, headers: started.update(s=status, h=headers))
        )
        return started["s"], dict(started["h"]), body

    status, headers, body = answer("HEAD")  # no token: the same answer every time
    get_status, _get_headers, get_body = answer("GET")
    assert status == get_status == "401 Unauthorized" and get_body
    assert body == b"" and headers["Content-Length"] == str(len(get_body))
