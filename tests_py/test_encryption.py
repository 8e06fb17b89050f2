"""Encryption at rest through the product's surfaces: where the password comes from, the key
commands, the Python API, the demo, and what a reader of the bucket finds after snapshots of a
real LightRAG graph on a local folder, S3 and Azure."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from helpers import azurite_connection, cli as run_cli, server_env

from lightrag.backup.errors import InvalidInputError, PasswordRequiredError, WrongPasswordError
from lightrag.backup.storage import AzureBlobBackupStorage, LocalBackupStorage, S3BackupStorage

PASSWORD_VARIABLES = ("LIGHTRAG_BACKUP_PASSWORD", "LIGHTRAG_BACKUP_PASSWORD_FILE", "LIGHTRAG_BACKUP_PASSWORD_COMMAND",
                      "LIGHTRAG_BACKUP_NEW_PASSWORD")
EXIT_PASSWORD = 4


def cli(*args: str, env: "dict[str, str] | None" = None, cwd: "Path | None" = None) -> subprocess.CompletedProcess:
    """The command line with no password in its environment but what ``env`` adds."""
    return run_cli(*args, env=env, cwd=cwd, unset=PASSWORD_VARIABLES)


def secret_file(tmp_path: Path, name: str, secret: str) -> str:
    path = tmp_path / name
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return str(path)


@pytest.fixture
def no_password_env(monkeypatch):
    for name in PASSWORD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_init_refuses_without_a_password_naming_the_options_and_leaves_nothing(tmp_path: Path):
    repo = tmp_path / "repo"
    done = cli("--repo", str(repo), "init")
    assert done.returncode == EXIT_PASSWORD, done
    for option in ("--password-file", "--password-command", "LIGHTRAG_BACKUP_PASSWORD", "--encryption none"):
        assert option in done.stderr, done.stderr
    assert not repo.exists(), "a refused init leaves nothing behind"
    # There is no option that would put a password in the process list.
    assert cli("--repo", str(repo), "--password", "x", "init").returncode == 2


def test_encryption_none_is_explicit_and_warned_on_every_command(tmp_path: Path):
    repo = str(tmp_path / "repo")
    done = cli("--repo", repo, "init", "--encryption", "none")
    assert done.returncode == 0, done.stderr
    assert "NOT encrypted" in done.stdout
    listed = cli("--repo", repo, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "is not encrypted" in listed.stderr
    assert json.loads(listed.stdout) == []
    # An encrypted one says nothing of the kind.
    encrypted = str(tmp_path / "encrypted")
    env = {"LIGHTRAG_BACKUP_PASSWORD": "pw"}
    assert cli("--repo", encrypted, "init", env=env).returncode == 0
    assert "not encrypted" not in cli("--repo", encrypted, "list", env=env).stderr


def test_password_sources_are_taken_in_the_documented_order(tmp_path: Path):
    repo = str(tmp_path / "repo")
    right, wrong = "the right password", "a wrong password"
    right_file, wrong_file = secret_file(tmp_path, "right", right), secret_file(tmp_path, "wrong", wrong)
    done = cli("--repo", repo, "init", env={"LIGHTRAG_BACKUP_PASSWORD": right})
    assert done.returncode == 0, done.stderr
    assert "encrypted, key fingerprint" in done.stdout

    def lists(*options: str, env: "dict[str, str] | None" = None, cwd: "Path | None" = None) -> subprocess.CompletedProcess:
        return cli("--repo", repo, *options, "list", env=env, cwd=cwd)

    missing = lists()
    assert missing.returncode == EXIT_PASSWORD and "is encrypted" in missing.stderr, missing
    refused = lists(env={"LIGHTRAG_BACKUP_PASSWORD": wrong})
    assert refused.returncode == EXIT_PASSWORD, refused
    assert "no key matches this password" in refused.stderr
    assert "Traceback" not in refused.stderr
    everything_wrong = {"LIGHTRAG_BACKUP_PASSWORD_FILE": wrong_file,
                        "LIGHTRAG_BACKUP_PASSWORD_COMMAND": f"cat {wrong_file}",
                        "LIGHTRAG_BACKUP_PASSWORD": wrong}
    # --password-file, then --password-command, win over every variable...
    assert lists("--password-file", right_file, env=everything_wrong).returncode == 0
    assert lists("--password-command", f"cat {right_file}", env=everything_wrong).returncode == 0
    assert lists("--password-file", right_file, "--password-command", f"cat {wrong_file}").returncode == 0
    # ...then the variables: the file, the command, the password itself.
    assert lists(env={**everything_wrong, "LIGHTRAG_BACKUP_PASSWORD_FILE": right_file}).returncode == 0
    only_command = {"LIGHTRAG_BACKUP_PASSWORD_COMMAND": f"cat {right_file}", "LIGHTRAG_BACKUP_PASSWORD": wrong}
    assert lists(env=only_command).returncode == 0
    assert lists(env={"LIGHTRAG_BACKUP_PASSWORD": right}).returncode == 0
    # .env in the current folder, as LightRAG reads it (the environment wins).
    (tmp_path / ".env").write_text(f"LIGHTRAG_BACKUP_PASSWORD={right}\n")
    assert lists(cwd=tmp_path).returncode == 0
    # A failing command is a clear error naming the program, not its output.
    failing = lists("--password-command", "false")
    assert failing.returncode != 0 and "'false' exited with status 1" in failing.stderr, failing


def test_key_commands_add_change_remove_and_export_keys(tmp_path: Path):
    repo = str(tmp_path / "repo")
    first = {"LIGHTRAG_BACKUP_PASSWORD": "first password"}
    assert cli("--repo", repo, "init", env=first).returncode == 0
    second_file = secret_file(tmp_path, "second", "second password")
    added = cli("--repo", repo, "key", "add", "--new-password-file", second_file, "--json", env=first)
    assert added.returncode == 0, added.stderr
    second_id = json.loads(added.stdout)["added"]
    keys = json.loads(cli("--repo", repo, "key", "list", "--json", env=first).stdout)
    assert len(keys) == 2 and sum(k["current"] for k in keys) == 1
    assert {k["kdf"]["algorithm"] for k in keys} == {"argon2id"}
    first_id = next(k["id"] for k in keys if k["current"])
    second = {"LIGHTRAG_BACKUP_PASSWORD": "second password"}
    # The key in use cannot be removed; passwd replaces it.
    refused = cli("--repo", repo, "key", "remove", second_id, env=second)
    assert refused.returncode == 1 and "key passwd" in refused.stderr, refused
    changed = cli("--repo", repo, "key", "passwd", env={**second, "LIGHTRAG_BACKUP_NEW_PASSWORD": "third password"})
    assert changed.returncode == 0, changed.stderr
    assert cli("--repo", repo, "list", env=second).returncode == EXIT_PASSWORD
    third = {"LIGHTRAG_BACKUP_PASSWORD": "third password"}
    assert cli("--repo", repo, "key", "remove", first_id[:10], env=third).returncode == 0
    assert cli("--repo", repo, "list", env=first).returncode == EXIT_PASSWORD
    listed = cli("--repo", repo, "key", "list", env=third)
    assert listed.returncode == 0 and listed.stdout.count("argon2id") == 1, listed.stdout
    # A key export makes a repository that shares the master key (and so its chunk ids).
    exported = cli("--repo", repo, "key", "export", env=third)
    assert exported.returncode == 0 and "master key" in exported.stderr
    export_file = tmp_path / "export.json"
    export_file.write_text(exported.stdout)
    other = str(tmp_path / "other")
    made = cli("--repo", other, "init", "--from-key-export", str(export_file), "--json",
               env={"LIGHTRAG_BACKUP_PASSWORD": "other password"})
    assert made.returncode == 0, made.stderr
    original = LocalBackupStorage(repo, password="third password").config
    assert json.loads(made.stdout)["config"]["key_fingerprint"] == original["key_fingerprint"]
    assert json.loads(made.stdout)["config"]["repository_id"] != original["repository_id"]
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{}")
    bad = cli("--repo", str(tmp_path / "bad"), "init", "--from-key-export", str(garbage), env=third)
    assert bad.returncode == 1 and "not a lightrag-backup key export" in bad.stderr


def test_the_python_api_takes_a_password_a_callable_or_the_environment(tmp_path: Path, no_password_env, monkeypatch):
    path = tmp_path / "repo"
    with pytest.raises(PasswordRequiredError) as raised:
        LocalBackupStorage(path)
    assert "password=" in str(raised.value) and not path.exists()
    made = LocalBackupStorage(path, password="api password")
    assert made.encrypted and made.config["key_fingerprint"]
    assert LocalBackupStorage(path, password=b"api password", create=False).encrypted
    assert LocalBackupStorage(path, password=lambda: "api password", create=False).keys()[0]["current"]
    with pytest.raises(WrongPasswordError):
        LocalBackupStorage(path, password="nope", create=False)
    with pytest.raises(PasswordRequiredError):
        LocalBackupStorage(path, create=False)
    monkeypatch.setenv("LIGHTRAG_BACKUP_PASSWORD", "api password")
    assert LocalBackupStorage(path, create=False).encrypted
    plain = LocalBackupStorage(tmp_path / "plain", encryption="none")
    assert not plain.encrypted and plain.keys() == []
    with pytest.raises(InvalidInputError):
        LocalBackupStorage(tmp_path / "odd", encryption="rot13")
    with pytest.raises(InvalidInputError):
        made.add_key("")
    # Where a storage is taken as a path or URL, so is a password.
    from lightrag.backup import BackupManager, GraphBackup

    monkeypatch.delenv("LIGHTRAG_BACKUP_PASSWORD")
    by_path = GraphBackup("g", str(path), os.devnull, password="api password")
    assert by_path.storage.encrypted and by_path.list_snapshots() == []
    with pytest.raises(PasswordRequiredError):
        GraphBackup("g", str(path), os.devnull)
    with pytest.raises(InvalidInputError):
        GraphBackup("g", made, os.devnull, password="api password")
    assert BackupManager(str(path), tmp_path / "catalog.sqlite3", password=lambda: "api password").storage.encrypted


@pytest.mark.cloud
def test_the_demo_runs_with_no_setup_and_keeps_its_throwaway_password(tmp_path: Path):
    done = cli("demo", "--dir", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "encrypted; its throwaway password is in" in done.stdout
    password_file = tmp_path / "demo" / "repository-password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    opened = LocalBackupStorage(tmp_path / "demo" / "backups", password=password_file.read_text().strip(), create=False)
    assert opened.encrypted and opened.list_graphs() == ["demo"]


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def readable(blob: bytes) -> bytes:
    """What a reader of the bucket can read in one object: its bytes, and every zstd frame in
    it decompressed (compression hides nothing: a plaintext repository's chunks and manifests
    are zstd frames, so a needle is found in them)."""
    import zstandard

    found = [blob]
    at = blob.find(ZSTD_MAGIC)
    while at != -1:
        try:
            found.append(zstandard.ZstdDecompressor().decompressobj().decompress(blob[at:at + (32 << 20)]))
        except zstandard.ZstdError:
            pass
        at = blob.find(ZSTD_MAGIC, at + 1)
    return b"".join(found)


def _objects_of(backend: str, prefix: str, tmp_path: Path) -> list[bytes]:
    """The raw bytes of every object the backend stores for the repository (for Azure, every
    blob Azurite holds: the needle is unique to this test)."""
    if backend in ("local", "plain"):
        root = tmp_path / backend
    elif backend == "s3":
        root = Path(server_env("LRB_TEST_S3S_DATA")) / server_env("LRB_TEST_S3S_BUCKET") / prefix
    else:
        root = Path(server_env("LRB_TEST_AZURITE_DATA"))
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files, f"nothing stored under {root}"
    return [readable(p.read_bytes()) for p in files]


def _storage(backend: str, prefix: str, tmp_path: Path) -> Any:
    if backend == "local":
        return LocalBackupStorage(tmp_path / "local")
    if backend == "plain":
        return LocalBackupStorage(tmp_path / "plain", encryption="none")
    if backend == "s3":
        return S3BackupStorage(server_env("LRB_TEST_S3S_BUCKET"), prefix, endpoint_url=server_env("LRB_TEST_S3S_ENDPOINT"),
                               access_key_id=server_env("LRB_TEST_S3S_KEY"),
                               secret_access_key=server_env("LRB_TEST_S3S_SECRET"))
    return AzureBlobBackupStorage(server_env("LRB_TEST_AZURITE_CONTAINER"), prefix,
                                  connection_string=azurite_connection(server_env("LRB_TEST_AZURITE_ENDPOINT")))


@pytest.mark.parametrize("backend", ["local", pytest.param("s3", marks=pytest.mark.cloud),
                                     pytest.param("azure", marks=pytest.mark.cloud)])
async def test_no_entity_name_chunk_text_or_file_name_reaches_the_bucket(backend: str, tmp_path: Path, rag):
    from lightrag.backup import GraphBackup
    from lightrag.backup.offline_graph import entity_names

    needle = f"Quuxlington{uuid.uuid4().hex[:12]}"
    await rag.ainsert(f"{needle} founded the guild of {needle} archivists. {needle} keeps the ledgers.")
    graph_dir = Path(rag.working_dir)
    names = [n for n in entity_names(graph_dir) if len(n) >= 6][:20]
    held = b"".join(p.read_bytes() for p in graph_dir.iterdir() if p.is_file())
    assert needle.encode() in held, "the graph holds the needle (so the test can fail)"
    needles = [needle.encode()]
    if backend != "azure":  # Azurite's folder holds every test's blobs: only the needle is ours
        needles += [n.encode() for n in names] + [b"kv_store_full_docs", b"vdb_entities", str(graph_dir).encode()]
    # The same snapshot in an unencrypted repository shows every needle: the search can fail.
    plain = GraphBackup.from_rag("secret-graph", rag, _storage("plain", "", tmp_path))
    await plain.acreate_snapshot("plain")
    shown = b"".join(_objects_of("plain", "", tmp_path))
    assert all(text in shown for text in needles), [t for t in needles if t not in shown]

    prefix = f"pytest/{uuid.uuid4().hex}"
    store = _storage(backend, prefix, tmp_path)
    assert store.encrypted
    backup = GraphBackup.from_rag("secret-graph", rag, store)
    await backup.acreate_snapshot("first")
    await rag.ainsert("Another document about the guild and its ledgers.")
    await backup.acreate_snapshot("second")
    objects = _objects_of(backend, prefix, tmp_path)
    for blob in objects:
        for text in needles:
            assert text not in blob, f"{text!r} found in a stored object"
    restored = tmp_path / "restored"
    await backup.arestore_snapshot("latest", target_dir=restored)
    assert needle.encode() in (restored / "kv_store_full_docs.json").read_bytes()


@pytest.mark.processes
def test_a_standby_must_hold_its_primarys_key_and_is_provisioned_from_a_key_export(tmp_path: Path):
    from helpers import build, start_server, start_serve, stop_serve

    build(tmp_path / "primary-graphs" / "g1", 2, seed=3)
    primary = start_server(tmp_path, "primary", "primary-key")
    servers = [primary]
    try:
        client = primary["client"]
        made = client.post("/backup/graphs/g1/snapshots?wait=true").json()["result"]

        def standby_with(name: str, *init_options: str, env: "dict[str, str]") -> dict[str, Any]:
            repo = tmp_path / f"{name}-repo"
            done = cli("--repo", str(repo), "init", *init_options, env=env)
            assert done.returncode == 0, done.stderr
            graphs = tmp_path / f"{name}-graphs"
            graphs.mkdir()
            server = start_serve(repo, tmp_path / f"{name}.sqlite3", graphs, f"{name}-key", "--role", "standby",
                                 init=False, env=env)
            servers.append(server)
            client.post("/replication/targets", json={"name": name, "base_url": server["base"],
                                                      "api_key": f"{name}-key"}).raise_for_status()
            return server

        # A standby whose repository made its own key: refused before anything moves.
        own = {"LIGHTRAG_BACKUP_PASSWORD": "standby password", "LIGHTRAG_BACKUP_KEY_EXPORT_FILE": ""}
        stranger = standby_with("stranger", env=own)
        refused = client.post("/replication/graphs/g1/replicate?wait=true", json={"targets": ["stranger"]}).json()
        outcome = refused["result"]["stranger"]
        assert outcome["status"] == "failed" and "must hold this repository's key" in outcome["error"], outcome
        assert stranger["client"].get("/backup/graphs").json() == []

        # Provisioned from the primary's key export, under its own password: pushes go through.
        exported = cli("--repo", str(primary["repo"]), "key", "export",
                       env={"LIGHTRAG_BACKUP_PASSWORD": os.environ["LIGHTRAG_BACKUP_PASSWORD"]})
        assert exported.returncode == 0, exported.stderr
        export_file = tmp_path / "primary-key.json"
        export_file.write_text(exported.stdout)
        provisioned = standby_with("provisioned", "--from-key-export", str(export_file), env=own)
        pushed = client.post("/replication/graphs/g1/replicate?wait=true", json={"targets": ["provisioned"]}).json()
        assert pushed["result"]["provisioned"]["status"] == "completed", pushed
        listed = provisioned["client"].get("/backup/graphs/g1/snapshots").json()
        assert [s["snapshot_id"] for s in listed] == [made["snapshot_id"]]
    finally:
        for server in servers:
            stop_serve(server)
