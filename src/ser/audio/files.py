"""Which files count as audio: by suffix, so that a folder of recordings can be listed without
opening every file (a wrong suffix is caught when the file is decoded)."""

from __future__ import annotations

from pathlib import Path

AUDIO_SUFFIXES = {
    ".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".mp4", ".aac", ".webm", ".aif", ".aiff",
}


def audio_files(root: str | Path) -> list[Path]:
    """All audio files under ``root`` (recursive, sorted), by suffix; a file is itself."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
