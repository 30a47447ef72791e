"""Atomic output writes: all or nothing, with the mode the user's umask asks for."""

import os
import stat

import pytest

from greenkfp.components._files import atomic_path, write_atomic


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_respect_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        path = write_atomic(tmp_path / "out" / "record.json", "{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_a_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "model.onnx"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []



# --------------------------------------------------------------------------- write_files: a set of outputs


def test_write_files_writes_a_set_with_the_umask(tmp_path):
    from greenkfp.components._files import write_files

    previous = os.umask(0o002)
    try:
        paths = write_files(tmp_path / "a" / "b", {"x.json": "{}", "y.csv": b"1\n"})
    finally:
        os.umask(previous)
    assert [p.read_bytes() for p in paths] == [b"{}", b"1\n"]
    assert [stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "a", tmp_path / "a" / "b", *paths)] == \
        [0o775, 0o775, 0o664, 0o664]


def test_write_files_a_failed_set_leaves_the_previous_one_and_no_temporary_file(tmp_path):
    from greenkfp.components._files import OutputError, write_files

    folder = tmp_path / "out"
    write_files(folder, {"a.txt": "old a", "b.txt": "old b"})
    (folder / "c.txt").mkdir()  # the last target cannot be replaced
    with pytest.raises(OutputError) as caught:
        write_files(folder, {"a.txt": "new a", "b.txt": "new b", "c.txt": "new c"})
    assert str(caught.value) == f"--output '{folder}': {folder / 'c.txt'} is a folder, not a file"
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "b.txt", "c.txt"]
    assert (folder / "a.txt").read_text() == "old a" and (folder / "b.txt").read_text() == "old b"


@pytest.mark.parametrize("value, reason", [
    ("", "must name a folder (it is empty)"),
    ("/", "must not be the file system's root: name a folder to write into"),
    ("FILE", "is a file, not a folder"),
    ("FILE/sub", "FILE is a file, not a folder"),
])
def test_write_files_bad_folders_are_one_line_naming_the_option(tmp_path, value, reason):
    from greenkfp.components._files import OutputError, write_files

    (tmp_path / "FILE").write_text("x")
    value, reason = value.replace("FILE", str(tmp_path / "FILE")), reason.replace("FILE", str(tmp_path / "FILE"))
    with pytest.raises(OutputError) as caught:
        write_files(value, {"a.txt": "a"}, option="--exports")
    assert str(caught.value) == f"--exports {value!r}: {reason}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_write_files_a_read_only_folder_says_permission_denied(tmp_path):
    from greenkfp.components._files import OutputError, write_files

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(OutputError, match=f"^--output '{locked}/new': {locked}: permission denied$"):
        write_files(locked / "new", {"a.txt": "a"})
