import random
import secrets
import string

import pytest

from engine.secrets import looks_random, redact

# Ordinary commands: nothing in them may be touched.
ORDINARY = [
    "git log --since=2.weeks",
    "sha256sum -c SHA256SUMS",
    "echo 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  f.iso' | sha256sum -c",
    "docker pull python@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
    "git checkout 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "ls /var/lib/docker/containers/3f4e9a1c-2b7d-4c1e-9f0a-1234567890ab/",
    "cat /sys/class/net/eth0/device/uevent",
    "cp ~/Downloads/IMG_20240101_123456.jpg .",
    "python manage.py makemigrations MyAppConfigurationV2",
    "gpg --default-key=ABCDEF12 --sign notes.txt",
    "sort --key=2 data.txt",
    "awk -v key=1 '{print $key}' f.txt",
    "mysql -u root -p mydb",
    "mysql --password -u root",
    "export PATH=$HOME/bin:$PATH",
    "export GITHUB_TOKEN=$(pass show github)",
    "export API_KEY=\"$KEY_FROM_VAULT\"",
    "echo $AWS_SECRET_ACCESS_KEY",
    "find . -name '*.py' -newer setup.py",
    "kubectl get pods -n kube-system",
    "ssh-keygen -t ed25519 -C me@example.com",
    "curl https://example.com/api/v1/users?page=2",
    "git clone git@github.com:user/repo.git",
    "git clone https://github.com/user/repo.git",
    "tar -czf backup-2024-01-01.tar.gz /home/user/Documents",
    "rsync -avz --exclude=node_modules ./src/ server:/srv/app/",
    "journalctl -u NetworkManager.service --since today",
    "pip install torch==2.3.0+cpu --index-url https://download.pytorch.org/whl/cpu",
    "grep -rn TODO src/components/UserProfileSettings.tsx",
    "ffmpeg -i input.mp4 -vf scale=1280:720 -c:v libx264 output_1280x720.mp4",
    "ssh -p 2222 user@host",
    "psql -h localhost -U postgres -d mydb",
    "git rebase -i HEAD~3",
    "docker run -e POSTGRES_DB=app -p 5432:5432 postgres:16",
]

SECRETS = [
    ('curl -H "Authorization: Bearer abc123def456" https://api.example.com',
     'curl -H "Authorization: Bearer {{token}}" https://api.example.com'),
    ("curl -H 'authorization: token s3cr3t' x", "curl -H 'authorization: token {{token}}' x"),
    ('curl -H "X-Api-Key: abc" https://x', 'curl -H "X-Api-Key: {{token}}" https://x'),
    ("export GITHUB_TOKEN=ghp_" + "aB3" * 12, "export GITHUB_TOKEN={{token}}"),
    ("git push https://ghp_" + "x1Y" * 12 + "@github.com/u/r", "git push https://{{token}}@github.com/u/r"),
    ("git remote add origin https://github_pat_11ABCDEFG0123456789_abcdefghijklmnop@github.com/x/y",
     "git remote add origin https://{{token}}@github.com/x/y"),
    ("git clone https://alice:hunter2@git.example.com/x/y", "git clone https://alice:{{password}}@git.example.com/x/y"),
    ("psql postgres://app:pa55word@db:5432/app", "psql postgres://app:{{password}}@db:5432/app"),
    ("mysql -u root -phunter2 shop", "mysql -u root -p{{password}} shop"),
    ("mysqldump -uroot -p'hunter 2' shop > shop.sql", "mysqldump -uroot -p{{password}} shop > shop.sql"),
    ("psql --password=hunter2", "psql --password={{password}}"),
    ("vault login --token s.abcdef", "vault login --token {{password}}"),
    ("sshpass -p hunter2 ssh host", "sshpass -p {{password}} ssh host"),
    ("docker login -u me -p hunter2 registry.example.com", "docker login -u me -p {{password}} registry.example.com"),
    ("curl -u admin:hunter2 https://x", "curl -u admin:{{password}} https://x"),
    ("curl -d password=hunter2 https://x/login", "curl -d password={{token}} https://x/login"),
    ("curl 'https://api.x.com/v1?api_key=abc123&q=1'", "curl 'https://api.x.com/v1?api_key={{token}}&q=1'"),
    ("aws configure set aws_access_key_id AKIAIOSFODNN7EXAMPLE", "aws configure set aws_access_key_id {{aws_key}}"),
    ("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "export AWS_SECRET_ACCESS_KEY={{token}}"),
    ("export OPENAI_API_KEY='sk-abc'", "export OPENAI_API_KEY={{token}}"),
    ("DB_PASSWORD=hunter2 ./run.sh", "DB_PASSWORD={{token}} ./run.sh"),
    ("echo xoxb-1234567890-abcdefghij | slack-post", "echo {{token}} | slack-post"),
    ("http GET api.x.com 'Cookie: a' "
     "jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "http GET api.x.com 'Cookie: a' jwt={{jwt}}"),
    ("heroku config:set STRIPE=Zq8vN2xK7pL4mW9rT3yB6hJ1", "heroku config:set STRIPE={{secret}}"),
    ("kubectl create secret generic db --from-literal=password=hunter2",
     "kubectl create secret generic db --from-literal=password={{token}}"),
]


@pytest.mark.parametrize("command", ORDINARY)
def test_ordinary_commands_are_left_alone(command):
    assert redact(command).text == command and redact(command).count == 0


@pytest.mark.parametrize("command, expected", SECRETS)
def test_secrets_become_placeholders(command, expected):
    result = redact(command)
    assert result.text == expected
    assert result.count >= 1 and not result.refused


def test_a_request_in_english_is_redacted_too():
    result = redact("log in to the registry with password=hunter2")
    assert result.text == "log in to the registry with password={{token}}"


@pytest.mark.parametrize("text", [
    "echo '-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA' > id",
    "ghp_" + "aB3" * 12,
    "'Zq8vN2xK7pL4mW9rT3yB6hJ1'",
])
def test_what_cannot_be_kept_is_refused(text):
    assert redact(text).refused


def test_random_tokens_are_caught_and_hex_or_uuids_are_not():
    rng = random.Random(0)
    alphabet = string.ascii_letters + string.digits
    keys = ["".join(rng.choice(alphabet) for _ in range(32)) for _ in range(500)]
    assert sum(map(looks_random, keys)) >= 0.97 * len(keys)
    hexes = ["".join(rng.choice("0123456789abcdef") for _ in range(64)) for _ in range(200)]
    assert not any(map(looks_random, hexes))
    uuids = [f"/tmp/{rng.getrandbits(128):032x}"[:13] + "-aaaa-4bbb-8ccc-dddddddddddd" for _ in range(20)]
    assert not any(looks_random(u) for u in uuids)
    assert looks_random(secrets.token_urlsafe(48))


def test_the_feedback_store_keeps_placeholders_and_says_so(tmp_path, caplog):
    from engine.feedback import FeedbackStore

    store = FeedbackStore(tmp_path / "feedback.db")
    with caplog.at_level("WARNING", logger="tinyllm.feedback"):
        id = store.add_correction("dump the shop db", "mysqldump shop", "mysqldump -uroot -phunter2 shop", "shell")
        store.add_acceptance("push with token", "git push https://ghp_" + "aB3" * 12 + "@github.com/u/r", "ask")
    assert store.get(id).corrected == "mysqldump -uroot -p{{password}} shop"
    assert store.acceptances()[0].command == "git push https://{{token}}@github.com/u/r"
    assert "1 likely secret" in caplog.text and "hunter2" not in caplog.text
    stored = b"".join(f.read_bytes() for f in tmp_path.glob("feedback.db*"))
    assert b"hunter2" not in stored and b"aB3aB3" not in stored


def test_the_feedback_store_refuses_what_it_cannot_redact(tmp_path):
    from engine.errors import EngineError
    from engine.feedback import FeedbackStore

    store = FeedbackStore(tmp_path / "feedback.db")
    with pytest.raises(EngineError, match="not stored: it holds a private key"):
        store.add_acceptance("save my key", "echo '-----BEGIN RSA PRIVATE KEY----- MIIE' > id_rsa", "shell")
    assert store.acceptances() == []
