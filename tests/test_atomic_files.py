"""Atomic writes: readers never see half a file; a failed write keeps the old."""

import json
import os
import threading

import pytest

from sparse_shared_jax import atomic_files, checkpoints, configs


def test_write_json_round_trip_leaves_no_temporary_files(tmp_path):
    path = str(tmp_path / "record.json")
    atomic_files.write_json(path, {"b": 2, "a": [1.5, None]})
    atomic_files.write_json(path, {"c": 3})
    with open(path) as f:
        assert json.load(f) == {"c": 3}
    assert os.listdir(tmp_path) == ["record.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = str(tmp_path / "record.json")
    atomic_files.write_json(path, {"kept": True})
    with pytest.raises(TypeError):
        atomic_files.write_json(path, {"not json": object()})
    with pytest.raises(TypeError):
        atomic_files.write_bytes(path, "not bytes")  # fails inside the write
    with open(path) as f:
        assert json.load(f) == {"kept": True}
    assert os.listdir(tmp_path) == ["record.json"]


def test_a_reader_never_sees_a_half_written_workdir_config(tmp_path):
    # Process 0 of a multi-process job writes config.json while the others
    # read it; a truncate-then-write let them read an empty file and crash.
    workdir = str(tmp_path)
    config = configs.base_config()
    checkpoints.check_workdir_config(workdir, config)
    errors = []
    done = threading.Event()

    def read_repeatedly():
        while not done.is_set():
            try:
                checkpoints.check_workdir_config(workdir, config, write=False)
            except Exception as error:  # collected for the assert below
                errors.append(error)
                return

    reader = threading.Thread(target=read_repeatedly)
    reader.start()
    for _ in range(300):
        checkpoints.check_workdir_config(workdir, config, write=True)
    done.set()
    reader.join()
    assert not errors, errors[0]
