"""Likely secrets in requests and commands: found here, replaced by placeholders before anything is stored.

Every pattern lives in this file. A secret becomes a placeholder such as `{{token}}` or `{{password}}`,
so a correction stays useful to learn from (`mysql -u root -p{{password}} db`). A text is refused
(`Redaction.refused`) when redacting it leaves nothing worth keeping: a private key, or a command that
was only a secret.

Long high-entropy strings: a run of 20+ characters from the base64url alphabet counts as a secret when it
mixes lower case, upper case and digits, at least 40% of neighbouring characters are of different kinds
(random base62 scores ~0.6; `IMG_20240101_123456` or `MyAppConfigurationV2` score 0.26-0.4), and its
Shannon entropy is at least 3.3 bits per character (a random 20-character key scores 3.3-4.3; 32
characters 3.9-4.7). Over 97% of random 32-character keys are caught (tests/engine/test_secrets.py).
Pure hex (sha256 sums, git hashes, docker digests) and UUIDs are never taken: they name files and commits
that commands legitimately hold.
"""
import math
import re
from collections import Counter
from dataclasses import dataclass

MIN_RANDOM_LENGTH = 20
MIN_ENTROPY_BITS = 3.3
MIN_CLASS_SWITCHES = 0.4  # share of neighbouring characters of different kinds (random base62: ~0.6)

_VALUE = r"""(?!\{\{|["']?[$`])("[^"]*"|'[^']*'|[^\s'"&;|]+)"""  # a shell word; not a placeholder, variable or $(...)
_SECRET_NAMES = r"(?:password|passwd|pass|secret|token|api_?key|access_?key|secret_?key|private_?key|auth|credentials?)"

# (pattern, replacement) in order: the specific shapes first, so they name the placeholder.
_PATTERNS = [
    # scheme://user:pass@host: the password goes, the user and host stay.
    (re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@'\"]+):[^\s/@'\"]+@"), r"\1:{{password}}@"),
    # Authorization: Bearer xyz / Basic xyz / a bare token.
    (re.compile(r"(?i)\b((?:proxy-)?authorization:\s*(?:(?:bearer|basic|token|bot|digest)\s+)?)[^\s'\"]+"),
     r"\1{{token}}"),
    (re.compile(r"(?i)\b(x-api-key:\s*)[^\s'\"]+"), r"\1{{token}}"),
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"), "{{aws_key}}"),
    (re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}\b"), "{{token}}"),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"), "{{token}}"),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"), "{{token}}"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), "{{token}}"),
    (re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}\b"), "{{token}}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\b"), "{{jwt}}"),
    # FOO_TOKEN=..., export AWS_SECRET_ACCESS_KEY=..., password=... (also in a URL query).
    # A value that is a variable or a command substitution is no secret: `TOKEN=$(pass show x)` stays.
    (re.compile(r"(?<![\w-])((?:export\s+)?[A-Z0-9_]*(?:TOKEN|SECRET|KEY|PASSWORD|PASSWD|PASS|CREDENTIALS?)=)"
                r"(?![$`\s])" + _VALUE),
     r"\1{{token}}"),
    (re.compile(r"(?<![\w-])((?:[a-z0-9]+_)*" + _SECRET_NAMES + r"=)(?![$`\s&])" + _VALUE), r"\1{{token}}"),
    # --password=x, --token x, ... (a value starting with - is the next flag: mysql --password prompts).
    (re.compile(r"(--(?:password|passwd|pass|token|api-key|apikey|secret|client-secret|access-token|auth-token)"
                r"(?:=|\s+))(?![-$`])" + _VALUE),
     r"\1{{password}}"),
    # mysql -psecret (glued; `-p db` with a space prompts), sshpass -p x, docker login -p x.
    (re.compile(r"(\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mariadb)\b[^|;&]*?\s-p)"
                r"(?![\s-])" + _VALUE),
     r"\1{{password}}"),
    (re.compile(r"(\b(?:sshpass|docker\s+login|podman\s+login)\b[^|;&]*?\s-p\s*)(?![-$])" + _VALUE),
     r"\1{{password}}"),
    # curl -u user:pass
    (re.compile(r"(\bcurl\b[^|;&]*?\s(?:-u|--user)[=\s]\s*['\"]?[^\s:'\"]+:)[^\s'\"]+"), r"\1{{password}}"),
]
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|\bPuTTY-User-Key-File")
_RANDOM_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{%d,}={0,2}" % MIN_RANDOM_LENGTH)
_HEX = re.compile(r"[0-9a-fA-F]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PLACEHOLDER = re.compile(r"\{\{\w+\}\}")


@dataclass(frozen=True)
class Redaction:
    text: str
    count: int  # secrets replaced
    refused: str = ""  # why the text cannot be kept at all; empty when it can


def entropy_bits(text: str) -> float:
    """Shannon entropy per character of `text` itself."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def looks_random(word: str) -> bool:
    core = word.strip("=-_/+")
    if len(core) < MIN_RANDOM_LENGTH or _HEX.fullmatch(core) or _UUID.search(core):
        return False
    if not (re.search(r"[a-z]", core) and re.search(r"[A-Z]", core) and re.search(r"[0-9]", core)):
        return False
    kinds = [_kind(c) for c in core]
    switches = sum(a != b for a, b in zip(kinds, kinds[1:])) / (len(core) - 1)
    return switches >= MIN_CLASS_SWITCHES and entropy_bits(core) >= MIN_ENTROPY_BITS


def _kind(char: str) -> int:
    return 0 if char.islower() else 1 if char.isupper() else 2 if char.isdigit() else 3


def redact(text: str) -> Redaction:
    if _PRIVATE_KEY.search(text):
        return Redaction(text, 0, "it holds a private key")
    count = 0
    for pattern, replacement in _PATTERNS:
        text, n = pattern.subn(replacement, text)
        count += n

    def random_run(match: re.Match) -> str:
        nonlocal count
        if not looks_random(match.group()):
            return match.group()
        count += 1
        return "{{secret}}"

    text = _RANDOM_RUN.sub(random_run, text)
    if count and not _PLACEHOLDER.sub("", text).strip(" '\"=:"):
        return Redaction(text, count, "it is only a secret")
    return Redaction(text, count)
