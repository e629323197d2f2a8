"""Concrete variants of tldr pairs: placeholders filled with plausible values the request names.

tldr commands hold placeholders (`tar xf {{path/to/source.tar}}`) while users name real things
("untar backup.tar"). A variant fills each placeholder it recognises with a value and appends the
values to the request, so the model learns to carry the user's words into the command; option
spellings (`{{[-r|--recursive]}}`) take their first form. A command with a placeholder this module
does not recognise gets no variant (a wrong guess would teach noise). The original pair is kept too.
"""
import random
import re

from training.data.records import Pair

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_ALTERNATIVES = re.compile(r"^\[([^|\]]+)\|[^\]]*\]$")
_FILE_STEMS = ["notes", "report", "data", "backup", "photo", "main", "config", "archive", "output", "video"]
_FILES = ["notes.txt", "report.pdf", "data.csv", "config.yaml", "main.py", "photo.jpg", "app.log", "index.html"]
_DIRS = ["src", "photos", "backups", "project", "logs", "docs", "build", "music"]
# Placeholder name (lower case, digits and separators stripped) -> values.
_VALUES = {
    "username": ["alice", "bob", "deploy"], "user": ["alice", "bob", "admin"],
    "password": ["s3cret", "hunter2"], "port": ["8080", "3000", "5432", "22"],
    "host": ["server1", "db.local", "192.168.1.20"], "hostname": ["server1", "web01"],
    "remotehost": ["server1", "backup.local"], "domain": ["example.org", "mysite.com"],
    "examplecom": ["example.org", "mysite.com", "github.com"], "url": ["https://example.org/data.json"],
    "httpsexamplecom": ["https://example.org", "https://mysite.com/index.html"],
    "ipaddress": ["192.168.1.10", "10.0.0.5"], "pid": ["1234", "4821"], "branchname": ["feature-login", "develop"],
    "package": ["curl", "nginx", "htop"], "packagename": ["curl", "nginx", "numpy"],
    "name": ["web", "demo", "test"], "containername": ["web", "db"], "image": ["nginx", "ubuntu", "redis"],
    "tag": ["v1.2.0", "latest"], "version": ["1.2.3", "3.11"], "pattern": ["error", "TODO"],
    "searchpattern": ["error", "TODO"], "regex": ["^error", "[0-9]+"], "keyword": ["error", "timeout"],
    "string": ["hello", "error"], "text": ["hello world"], "message": ["fix typo", "initial commit"],
    "devsdx": ["/dev/sdb"], "devsdxy": ["/dev/sdb1"], "devsdxn": ["/dev/sdb1"], "eth": ["wlan0", "enp3s0"],
    "n": ["3", "5", "20"], "number": ["3", "5", "20"], "count": ["3", "10"], "repository": ["myrepo"],
    "remotename": ["origin", "upstream"], "projectname": ["myapp"], "databasename": ["mydb"],
    "servicename": ["nginx", "sshd"], "unit": ["nginx.service"], "key": ["api_key"], "value": ["42"],
    "width": ["800"], "height": ["600"], "groupname": ["developers"], "modulename": ["requests"],
}


def _path_value(spec: str, rng: random.Random) -> str | None:
    name = spec.rsplit("/", 1)[-1]
    if " " in spec:  # "path/to/file1 path/to/file2 ..."
        return " ".join(rng.sample(_FILES, 2)) if "dir" not in name else " ".join(rng.sample(_DIRS, 2))
    if "dir" in name or "folder" in name:
        return rng.choice(_DIRS)
    if "." in name and not name.startswith("."):
        return f"{rng.choice(_FILE_STEMS)}.{name.rsplit('.', 1)[1]}"
    return rng.choice(_FILES)


def value_for(spec: str, rng: random.Random) -> str | None:
    """A concrete value for the placeholder `{{spec}}`, or None when it is not one we recognise."""
    if spec.startswith("path/to/"):
        return _path_value(spec[len("path/to/"):], rng)
    if spec.isdigit():
        return str(rng.choice([n for n in (2, 3, 5, 10, 20, 50, 100, 250) if str(n) != spec]))
    key = re.sub(r"[^a-z]", "", spec.lower())
    values = _VALUES.get(key)
    return rng.choice(values) if values else None


def fill_placeholders(pair: Pair, rng: random.Random) -> Pair | None:
    """`pair` with its placeholders filled and the values named in the request; None when the command
    has no value placeholder or one this module does not recognise."""
    chosen: dict[str, str] = {}
    named: list[str] = []

    def fill(match: re.Match) -> str:
        spec = match.group(1)
        option = _ALTERNATIVES.match(spec)
        if option:
            return option.group(1)
        if spec not in chosen:
            value = value_for(spec, rng)
            if value is None:
                raise LookupError(spec)
            chosen[spec] = value
            named.append(value)
        return chosen[spec]

    try:
        command = PLACEHOLDER.sub(fill, pair.command)
    except LookupError:
        return None
    if not named:
        return None
    request = pair.instruction.rstrip().rstrip(".")
    values = " ".join(named)
    template = rng.choice(["{r} {v}", "{r}: {v}", "{r} ({v})"])
    return Pair(template.format(r=request, v=values), command, pair.source, pair.topic)
