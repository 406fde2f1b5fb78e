"""core.atomic: a write either lands completely or leaves what was there."""
from __future__ import annotations

import pytest

from core.atomic import atomic_directory, atomic_file, write_text


def test_file_replaced_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    with atomic_file(target, suffix=".txt") as tmp:
        assert tmp.name.endswith(".txt") and tmp.parent == target.parent
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]  # no leftovers


def test_directory_replaced_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        (tmp / "x").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "y").write_text("2")
            raise RuntimeError("interrupted")
    assert [p.name for p in target.iterdir()] == ["x"]
    with atomic_directory(target) as tmp:
        (tmp / "z").write_text("3")
    assert [p.name for p in target.iterdir()] == ["z"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
