"""Embedded state is its user's alone (issue 19): the S3 data (originals of birth certificates)
and the signer's keys, certificates and logs are written with directories 0700 and files 0600."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from pipeline.embedded.s3server import EmbeddedS3


def _too_open(root: Path) -> list[str]:
    """Paths under ``root`` that a group or other user can read, write or enter; directories not 0700."""
    bad = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + [""]:
            path = Path(dirpath, name)
            if path.is_symlink():
                continue
            mode = stat.S_IMODE(path.lstat().st_mode)
            if mode != 0o700:
                bad.append(f"{path} {oct(mode)}")
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_symlink():
                continue
            mode = stat.S_IMODE(path.lstat().st_mode)
            if mode & 0o077:
                bad.append(f"{path} {oct(mode)}")
    return sorted(set(bad))


def test_the_embedded_s3_server_writes_its_data_for_its_user_only(s3_server, warehouse):
    data = b"%PDF-1.7 birth certificate of a citizen"
    document_id = hashlib.sha256(data).hexdigest()
    warehouse.put_original(document_id, data, source_file="giay-khai-sinh.pdf")
    assert warehouse.get_original(document_id)
    root = s3_server.root
    assert any((root / "data").rglob("*")), "the server wrote no data"
    # SeaweedFS chmods its volume-info files (<volume>.vif: version and size, no content) to
    # 0644 itself; they are out of reach behind the 0700 directories and tidied when it stops
    assert [p for p in _too_open(root) if not p.split()[0].endswith(".vif")] == []


def test_a_stopped_embedded_s3_server_leaves_nothing_readable_by_others(tmp_path):
    from pipeline.warehouse.layout import Warehouse

    with EmbeddedS3(tmp_path) as server:
        wh = Warehouse(server.settings)
        wh.ensure_bucket()
        data = b"%PDF-1.7 another original"
        wh.put_original(hashlib.sha256(data).hexdigest(), data, source_file="a.pdf")
    assert list((tmp_path / "s3" / "data").glob("*.dat"))
    assert _too_open(tmp_path / "s3") == []


def test_the_embedded_signer_writes_its_state_for_its_user_only(signer_service):
    assert (signer_service.state_dir / "signer.log").exists()
    assert _too_open(signer_service.state_dir) == []


def test_a_state_written_world_readable_is_restricted_when_the_server_starts(tmp_path):
    home = tmp_path / "home"
    old = home / "s3" / "data" / "volumes"
    old.mkdir(parents=True, mode=0o755)
    (old / "1.dat").write_bytes(b"x")
    os.chmod(old / "1.dat", 0o644)
    (home / "s3" / "weed.log").write_text("old log")
    os.chmod(home / "s3" / "weed.log", 0o644)
    from pipeline.embedded.s3server import restrict_state

    restrict_state(home / "s3")
    assert _too_open(home / "s3") == []


def test_restriction_happens_on_start_before_the_server_runs(tmp_path):
    """EmbeddedS3 restricts an existing state before it spawns SeaweedFS (no server needed)."""
    server = EmbeddedS3(tmp_path)
    (tmp_path / "s3" / "data").mkdir(parents=True, mode=0o755)
    (tmp_path / "s3" / "data" / "old.idx").write_bytes(b"x")
    os.chmod(tmp_path / "s3" / "data" / "old.idx", 0o644)
    server._credentials()  # noqa: SLF001 - the first step of start()
    assert _too_open(tmp_path / "s3") == []
