"""`deskprov admin create` and `deskprov superadmin create`: passwords from stdin, never argv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent.parent / "data" / "exempel.yaml"


def deskprov(*args, env, input=b""):
    return subprocess.run([sys.executable, "-m", "provisioning.cli", *args], env=env, input=input,
                          capture_output=True, timeout=60)


@pytest.fixture
def env(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DESKPROV_")}
    return {**clean, "DESKPROV_DATA_DIR": str(tmp_path / "var"), "DESKPROV_LOG_LEVEL": "WARNING"}


def test_create_admins_then_log_in(env, tmp_path):
    assert deskprov("import", str(EXAMPLE), env=env).returncode == 0
    made = deskprov("admin", "create", "--organization", "Exempel AB", "--number", "08-546 899 01",
                    "--password-stdin", env=env, input=b"Anna-hemligt-1\n")
    assert made.returncode == 0, made.stderr
    assert b"updated admin Anna Andersson" in made.stdout
    new = deskprov("admin", "create", "--organization", "Exempel AB", "--username", "it-chef", "--name", "IT",
                   "--password-stdin", env=env, input=b"It-chef-hemligt\n")
    assert new.returncode == 0 and b"created admin IT" in new.stdout
    staff = deskprov("superadmin", "create", "--username", "ops", "--password-stdin", env=env,
                     input=b"Ops-hemligt-99\n")
    assert staff.returncode == 0 and b"super admin ops created" in staff.stdout
    again = deskprov("superadmin", "create", "--username", "ops", "--password-stdin", env=env,
                     input=b"Ops-hemligt-99\n")
    assert again.returncode == 1 and b"already exists" in again.stderr
    weak = deskprov("superadmin", "create", "--username", "ops2", "--password-stdin", env=env, input=b"short\n")
    assert weak.returncode == 1 and b"at least 8" in weak.stderr
    nowhere = deskprov("admin", "create", "--organization", "Okänd AB", "--number", "0854689901",
                       "--password-stdin", env=env, input=b"Anna-hemligt-1\n")
    assert nowhere.returncode == 1 and b"no organisation" in nowhere.stderr
    exported = deskprov("export", env=env).stdout.decode()
    assert "admin: true" in exported and "argon2" not in exported
    assert "password_hash: $argon2id$" in deskprov("export", "--secrets", env=env).stdout.decode()
