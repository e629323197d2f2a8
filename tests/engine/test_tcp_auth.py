import stat

import pytest

from engine import paths
from engine.tcp_auth import new_token, read_token, refusal


@pytest.fixture
def token():
    token, path = new_token()
    assert path == paths.token_path() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_token() == token and len(token) >= 40
    return token


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "localhost:8765", "127.0.0.1:1"])
def test_local_hosts_with_the_token_pass(token, host):
    assert refusal({"Host": host, "Authorization": f"Bearer {token}"}, token) is None


@pytest.mark.parametrize("headers, status", [
    ({"Host": "localhost"}, 401),
    ({"Host": "localhost", "Authorization": "Bearer nope"}, 401),
    ({"Host": "localhost", "Authorization": "Basic {token}"}, 401),
    ({"Host": "evil.example", "Authorization": "Bearer {token}"}, 403),
    ({"Host": "localhost.evil.example:80", "Authorization": "Bearer {token}"}, 403),
    ({"Host": "127.0.0.1:80:80", "Authorization": "Bearer {token}"}, 403),
    ({"Host": "localhost:x", "Authorization": "Bearer {token}"}, 403),
    ({"Authorization": "Bearer {token}"}, 403),
    ({"Host": "localhost", "Origin": "https://evil.example", "Authorization": "Bearer {token}"}, 403),
])
def test_everything_else_is_refused(token, headers, status):
    headers = {k: v.format(token=token) for k, v in headers.items()}
    assert refusal(headers, token)[0] == status


def test_each_daemon_start_makes_a_new_token(token):
    assert new_token()[0] != token
