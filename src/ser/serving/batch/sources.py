"""A batch's inputs and one row per input: files, folders, globs, list files and URIs, read
where they are; a row is the prediction or the error that input raised, never an exception."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Sequence

from ser.audio import AudioError, audio_files
from ser.common import ConfigError


def is_uri(source: str) -> bool:
    """A remote URI (read as bytes by the worker); ``file://`` URIs are local paths."""
    return "://" in source and not source.startswith("file://")


def local_path(source: str) -> str:
    """Where a local input is: ``file://`` URIs decoded (``%20`` and the like), relative paths
    made absolute here, on the driver, so that workers with another working directory read the
    same file."""
    if source.startswith("file://"):
        from urllib.parse import unquote, urlparse

        source = unquote(urlparse(source).path)
    return os.path.abspath(source)


def read_source(source: str) -> bytes:
    """The bytes of a local path or of a URI (HTTP with urllib, the rest with pyarrow's file
    systems)."""
    if not is_uri(source):
        return Path(local_path(source)).read_bytes()
    if source.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(source, timeout=60) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise OSError(f"HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise OSError(str(exc.reason)) from None
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(source)
    with filesystem.open_input_stream(path) as f:
        return f.read()


def content_hash(source: str) -> str | None:
    try:
        return hashlib.sha256(read_source(source)).hexdigest()
    except (OSError, ValueError):
        return None  # unreadable: predicted (and reported) again


def error_row(source: str, exc: Exception, location: str | None = None) -> dict:
    """The row of an input that failed; the reason without the path repeated in front."""
    reason = str(exc)
    for prefix in (source, location or (source if is_uri(source) else local_path(source))):
        reason = reason.removeprefix(f"{prefix}: ")
    return {"path": source, "error": reason}


def predict_row(recognizer, source: str, limits: dict | None = None,
                location: str | None = None) -> tuple[dict, str | None]:
    """One input's row — the prediction, or the error that input raised (never an exception) —
    and, for a URI, the sha256 of the bytes fetched (for the resume journal: no second fetch).
    The audio is read from ``location`` (resolved on the driver: :func:`local_path`), the row
    keeps ``source`` as the user gave it."""
    digest = None
    try:
        data = location or (source if is_uri(source) else local_path(source))
        if is_uri(source):
            data = read_source(source)
            digest = hashlib.sha256(data).hexdigest()
        result = recognizer.predict(data, **(limits or {}))
    except (AudioError, OSError) as exc:
        return error_row(source, exc, location), digest
    return {**result.to_dict(), "path": source}, digest


def read_speakers(path: Path, sources: Sequence[str]) -> dict[str, str]:
    """Who speaks in which input, from a CSV with the columns ``path`` and ``speaker`` (others
    are ignored): the inputs named, as given or as the same local file, mapped to their speaker.
    Inputs it does not name are answered alone; rows naming no input are reported."""
    import csv

    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
            columns = set(rows[0]) if rows else set()
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read the speakers file {path}: {exc}") from exc
    if not {"path", "speaker"} <= columns:
        raise ConfigError(f"{path} needs the columns path and speaker (a header line "
                          f"'path,speaker'); it has {', '.join(sorted(c for c in columns if c)) or 'none'}")
    key = lambda s: s if is_uri(s) else local_path(s)  # noqa: E731
    given = {key(r["path"].strip()): r["speaker"].strip() for r in rows if r["path"] and r["speaker"]}
    mapping = {s: given[key(s)] for s in sources if key(s) in given}
    unused = len(given) - len({key(s) for s in mapping})
    if unused:
        print(f"ser: warning: {unused} of the {len(given)} paths in {path} are not among the inputs",
              file=sys.stderr)
    return mapping


def expand_inputs(items: Sequence[str], list_file: Path | None = None) -> list[str]:
    """Files, folders (recursively, audio suffixes), globs, and the lines of a list file
    (paths or URIs, ``#`` comments); a missing path stays in, to be reported per file."""
    import glob

    raw = list(items)
    if list_file is not None:
        raw += [line.strip() for line in Path(list_file).read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    out: list[str] = []
    for item in raw:
        if is_uri(item):
            out.append(item)
        elif Path(item).is_dir():
            found = audio_files(Path(item))
            if not found:
                print(f"ser: warning: no audio files under {item}", file=sys.stderr)
            out.extend(str(p) for p in found)
        elif any(ch in item for ch in "*?[") and not Path(item).exists():
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                print(f"ser: warning: nothing matches {item}", file=sys.stderr)
            out.extend(m for m in matches if Path(m).is_file())
        else:
            out.append(item)
    return out
