"""The resume journal beside a batch's output: a header recording what decides every answer
(the model's identity, the settings, ser's version), then one finished row per line with the
sha256 of its file's content."""

from __future__ import annotations

import json
from pathlib import Path

from ser.common import ConfigError


JOURNAL_VERSION = 2  # 1: rows only, no header (ser before the model identity was recorded)


def run_identity(model: str | None, limits: dict) -> dict:
    """What decides every answer of a run: the model actually used (the default falls back to
    light without its encoder weights), the settings that change results, ser's version."""
    from ser.common import __version__, sha256_file
    from ser.serving.inference import resolved_bundle_path

    root = resolved_bundle_path(model)
    return {"model": {"name": str(model or "default"), "config_sha256": sha256_file(root / "config.json")},
            "settings": dict(sorted(limits.items())), "ser_version": __version__}


def _read_journal(journal: Path, header: dict) -> dict[str, dict]:
    """The finished rows of an earlier run, by path; a journal written with another model or
    other settings is refused in one line."""
    done: dict[str, dict] = {}
    if not journal.is_file():
        return done
    lines = journal.read_text().splitlines()
    try:
        first = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        first = {}
    if lines and first.get("journal") != JOURNAL_VERSION:
        raise ConfigError(f"{journal} was written by an earlier ser without the model's identity: "
                          "its rows cannot be trusted for this run; pass --restart to start anew")
    for key, what in (("model", "model"), ("settings", "settings"), ("ser_version", "ser version")):
        if lines and first.get(key) != header.get(key):
            raise ConfigError(f"{journal} was written with another {what} ({first.get(key)}; "
                              f"this run: {header.get(key)}); pass the same --model and settings "
                              "to resume, or --restart to start anew")
    for line in lines[1:]:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        done[entry["row"]["path"]] = entry
    return done
