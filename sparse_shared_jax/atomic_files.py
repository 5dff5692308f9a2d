"""Atomic file writes.

A file is written next to its destination and renamed over it, so a reader
(another process of the same job, or a rerun after an interruption) sees the
old file or the complete new one, never a half-written one.
"""

from __future__ import annotations

import json
import os
import uuid


def write_bytes(path: str, data: bytes) -> None:
    """Replaces `path` with `data` in one step."""
    # A unique temporary name: two processes writing the same path at once
    # must not truncate each other's temporary file.
    temporary = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text(path: str, text: str) -> None:
    """Replaces `path` with `text` (UTF-8) in one step."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str, value) -> None:
    """Replaces `path` with `value` as indented JSON with sorted keys."""
    write_text(path, json.dumps(value, indent=2, sort_keys=True))
