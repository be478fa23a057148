"""A store given by ``--store`` that cannot be used is blamed on ``--store``, with its value, never
on the configuration file (issue 14, item 13c): ``serve``, ``apply`` and ``export``, each with an
unknown scheme, an unreachable PostgreSQL server and SQLite paths that cannot be opened. The real
CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from iamgate.store.link import StoreLink

IAMGATE = str(Path(sys.executable).parent / "iamgate")
ROOT = Path(__file__).resolve().parents[2]
CONFIG = (ROOT / "examples" / "quickstart.yaml").read_text(encoding="utf-8")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IAMGATE, *args], capture_output=True, text=True, timeout=60, check=False, cwd=cwd, env=os.environ
    )


def bad_urls(tmp: Path) -> dict[str, tuple[str, str]]:
    """name -> (URL, what the message shows of it: a password is masked)."""
    (tmp / "garbage.db").write_text("not a database\n")
    return {
        "unknown-scheme": ("mysql://app@127.0.0.1/gateway", "mysql://app@127.0.0.1/gateway"),
        "empty": ("", "''"),
        "no-file-name": ("sqlite:///", "sqlite:///"),
        "postgres-unreachable": (
            "postgresql://app:hunter2@127.0.0.1:1/gateway",
            "postgresql://app:***@127.0.0.1:1/gateway",
        ),
        "sqlite-missing-directory": (
            f"sqlite:///{tmp}/no/such/dir/x.db",
            f"sqlite:///{tmp}/no/such/dir/x.db",
        ),
        "sqlite-directory": (f"sqlite:///{tmp}", f"sqlite:///{tmp}"),
        "sqlite-not-a-database": (f"sqlite:///{tmp}/garbage.db", f"sqlite:///{tmp}/garbage.db"),
    }


CASES = [
    "unknown-scheme",
    "empty",
    "no-file-name",
    "postgres-unreachable",
    "sqlite-missing-directory",
    "sqlite-directory",
    "sqlite-not-a-database",
]


def check_blames_the_flag(done: subprocess.CompletedProcess[str], shown: str, config: Path | None) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert "--store" in done.stderr, done.stderr
    assert shown in done.stderr, done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    if config is not None:
        # the file is fine: no line of the output blames it
        assert str(config) not in done.stderr, done.stderr
        assert config.name not in done.stderr, done.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


@pytest.mark.parametrize("case", CASES)
def test_serve(tmp_path: Path, config: Path, case: str) -> None:
    url, shown = bad_urls(tmp_path)[case]
    done = run(
        "serve", "--config", str(config), "--store", url, "--port", "0", "--admin-port", "0", cwd=tmp_path
    )
    check_blames_the_flag(done, shown, config)


@pytest.mark.parametrize("case", CASES)
def test_apply(tmp_path: Path, config: Path, case: str) -> None:
    url, shown = bad_urls(tmp_path)[case]
    done = run("apply", str(config), "--store", url, cwd=tmp_path)
    check_blames_the_flag(done, shown, config)


@pytest.mark.parametrize("case", CASES)
def test_export(tmp_path: Path, case: str) -> None:
    url, shown = bad_urls(tmp_path)[case]
    done = run("export", "--store", url, cwd=tmp_path)
    check_blames_the_flag(done, shown, None)
    assert done.stdout == ""


def test_apply_blames_the_files_store_line(tmp_path: Path, config: Path) -> None:
    """Without --store the store is the file's: then the file and its 'store:' are named."""
    config.write_text(CONFIG + f"store: sqlite:///{tmp_path}/no/such/dir/x.db\n", encoding="utf-8")
    done = run("apply", str(config), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "--store" not in done.stderr
    assert f"{config}: store sqlite:///{tmp_path}/no/such/dir/x.db: " in done.stderr, done.stderr


def test_a_relative_store_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for apply and export, and for --config itself; a store: line in the file stays relative
    to the file."""
    conf = tmp_path / "conf"
    conf.mkdir()
    monkeypatch.chdir(tmp_path)
    flag = StoreLink("sqlite:///flag.db")
    flag.extend(conf, {})({})
    flag.close()
    line = StoreLink()
    line.extend(conf, {})({"store": "sqlite:///line.db"})
    line.close()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.db")) == [
        "conf/line.db",
        "flag.db",
    ]
