"""The resume journal beside a batch's output: a header recording what decides every answer
(the model's identity, the settings, ser's version), then one finished row per line with the
sha256 of its file's content."""

from __future__ import annotations

import json
from pathlib import Path

from ser.common import ConfigError


JOURNAL_VERSION = 2  # 1: rows only, no header (ser before the model identity was recorded)


def run_identity(model: str | None, limits: dict) -> dict:
    """What decides every answer of a run: the model (its name and the sha256 of its
    config.json, which holds its weights' hashes), the settings that change results, ser's
    version."""
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
    differences = [_difference(key, first.get(key), header.get(key))
                   for key in ("model", "settings", "ser_version") if first.get(key) != header.get(key)]
    if lines and differences:
        raise ConfigError(f"{journal} belongs to another run: {'; '.join(differences)}. Pass the "
                          "same --model and settings to resume, or --restart to start anew")
    for line in lines[1:]:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        done[entry["row"]["path"]] = entry
    return done


def _difference(key: str, then, now) -> str:
    """What differs between a journal's run and this one, in words."""
    if key == "model":
        then, now = then or {}, now or {}
        if then.get("name") != now.get("name"):
            return f"it used model {then.get('name')!r}, this run {now.get('name')!r}"
        return (f"model {now.get('name')!r} has changed since (version "
                f"{str(then.get('config_sha256'))[:12]}, now {str(now.get('config_sha256'))[:12]})")
    if key == "settings":
        then, now = then or {}, now or {}
        parts = [f"{name} {then.get(name, 'default')} then, {now.get(name, 'default')} now"
                 for name in sorted(set(then) | set(now)) if then.get(name) != now.get(name)]
        return "settings differ: " + ", ".join(parts)
    return f"it was written by ser {then}, this is ser {now}"


def journal_rows(journal: Path) -> int:
    """How many rows a journal holds (its header aside)."""
    with open(journal) as f:
        return max(0, sum(1 for _ in f) - 1)
