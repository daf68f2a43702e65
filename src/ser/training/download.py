"""``ser datasets download``: the public corpora the shipped models were trained on, fetched
only when a user asks, into the layout the corpus readers expect, and checked file by file.

Each corpus has a source (an archive, or one URL per file) and a manifest of the sha256 of
every file the shipped models used (``ser/sources/NAME.tsv.gz``: the original WAV files,
byte-identical to the public releases). Downloads are resumable (HTTP ``Range`` on a ``.part``
file; a second run skips what is complete) and show a progress bar. Files of a release that the
manifest does not list (speakers the shipped models never saw) are kept and counted as
unverified, never silently passed as checked.
"""

from __future__ import annotations

import gzip
import json
import shutil
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path, PurePosixPath

from ser.common import ConfigError, SerError, sha256_file


class DownloadError(SerError):
    """A download failed, or a file does not match its published checksum."""


#: Where each corpus comes from. ``archive``: one zip to fetch and unpack; ``per_file``: the
#: manifest's files under a base URL. Licences bind models trained on the data.
SOURCES = {
    "ravdess": {
        "archive": "https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip?download=1",
        "archive_name": "Audio_Speech_Actors_01-24.zip",
        "about": "RAVDESS speech, 24 actors (Zenodo record 1188976; Livingstone & Russo 2018), "
                 "CC BY-NC-SA 4.0",
    },
    "crema-d": {
        "per_file": "https://media.githubusercontent.com/media/CheyneyComputerScience/CREMA-D/master/",
        "also": {"VideoDemographics.csv": "https://raw.githubusercontent.com/"
                 "CheyneyComputerScience/CREMA-D/master/VideoDemographics.csv"},
        "about": "CREMA-D audio of the 71 actors the shipped models used (GitHub "
                 "CheyneyComputerScience/CREMA-D; Cao et al. 2014), ODbL / DbCL",
    },
    "tess": {
        "archive": "https://borealisdata.ca/api/access/dataset/:persistentId/"
                   "?persistentId=doi:10.5683/SP2/E8H2MF",
        "archive_name": "tess.zip",
        "about": "Toronto Emotional Speech Set (University of Toronto Dataverse, "
                 "doi:10.5683/SP2/E8H2MF; Dupuis & Pichora-Fuller 2010), CC BY-NC-ND 4.0",
    },
    "nemo": {
        "per_file": "https://raw.githubusercontent.com/amu-cai/nEMO/"
                    "66de9999a8f2f605eb5f64841790aa5cb0877782/",
        "about": "nEMO, Polish, the 6 actors the shipped models used (GitHub amu-cai/nEMO at a "
                 "fixed commit; Christop, LREC-COLING 2024), CC BY-NC-SA 4.0",
    },
}
#: Corpora the shipped models use that have no stable public download.
NO_PUBLIC_SOURCE = {
    "emovo": "EMOVO has no stable public download; ask its authors (Costantini et al., LREC "
             "2014) and put the speaker folders (f1, m1, ...) in DIR/emovo",
    "banglaser": "BanglaSER is published as a zip on Mendeley Data (dataset t9h6p943xy; Das et "
                 "al., Data in Brief 2022) behind links that change; download it there, put the "
                 "WAV files in DIR/banglaser/dataset and prefix each name with 'bser-' (the "
                 "reader tells them from RAVDESS's names by it)",
}


@dataclass
class DownloadReport:
    corpus: str
    folder: str
    downloaded_bytes: int = 0
    verified: int = 0  # files whose sha256 matches the manifest
    unverified: int = 0  # audio files of the release the manifest does not list
    missing: list[str] = field(default_factory=list)  # in the manifest, not in the release
    mismatched: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def manifest(corpus: str) -> dict[str, str]:
    """Relative path (original naming) -> sha256 of every file the shipped models used."""
    text = gzip.decompress((files("ser") / "sources" / f"{corpus}.tsv.gz").read_bytes()).decode()
    rows = [line.split("\t") for line in text.splitlines()[1:] if line]
    return {path: digest for path, digest in rows}


def download_corpus(corpus: str, to: str | Path = "corpora", *, mirror: str | None = None,
                    source: dict | None = None, expected: dict[str, str] | None = None,
                    progress: bool = True, retries: int = 3) -> DownloadReport:
    """Fetch ``corpus`` into ``to/corpus`` and check it. ``mirror``: a base URL serving the
    same files (the archive by its name, or the per-file paths) instead of the public source;
    ``source``/``expected``: another source entry and manifest (tests, private copies)."""
    if corpus in NO_PUBLIC_SOURCE:
        raise ConfigError(NO_PUBLIC_SOURCE[corpus])
    if source is None and corpus not in SOURCES:
        known = ", ".join(sorted([*SOURCES, *NO_PUBLIC_SOURCE]))
        raise ConfigError(f"no download for corpus {corpus!r}; known: {known}")
    source = dict(source or SOURCES[corpus])
    expected = manifest(corpus) if expected is None else expected
    folder = Path(to) / corpus
    folder.mkdir(parents=True, exist_ok=True)
    report = DownloadReport(corpus, str(folder))
    done = folder / ".download" / "report.json"
    if done.is_file() and not json.loads(done.read_text()).get("mismatched", True):
        _verify(folder, expected, report, progress)  # an earlier run finished: check again only
        if not report.mismatched and len(report.missing) <= len(json.loads(done.read_text())["missing"]):
            return report
        report = DownloadReport(corpus, str(folder))
    if "archive" in source:
        url = (f"{mirror.rstrip('/')}/{source['archive_name']}" if mirror else source["archive"])
        archive = folder / ".download" / source["archive_name"]
        report.downloaded_bytes += fetch(url, archive, progress=progress, retries=retries)
        _unpack(archive, folder)
    else:
        base = (mirror.rstrip("/") + "/") if mirror else source["per_file"]
        targets = [((base + name) if mirror else url, folder / name, None)
                   for name, url in source.get("also", {}).items()]
        targets += [(base + path, folder / path, digest) for path, digest in expected.items()]
        report.downloaded_bytes += _fetch_many(targets, progress, retries)
    _verify(folder, expected, report, progress)
    (folder / ".download").mkdir(exist_ok=True)
    (folder / ".download" / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
    if report.mismatched:
        raise DownloadError(f"{len(report.mismatched)} file(s) of {corpus} do not match their "
                            f"published sha256 (first: {report.mismatched[0]}); delete them and "
                            "run the download again")
    if "archive" in source:  # unpacked and checked: the archive is not needed any more
        (folder / ".download" / source["archive_name"]).unlink(missing_ok=True)
    return report


def fetch(url: str, target: Path, *, progress: bool = True, retries: int = 3,
          sha256: str | None = None) -> int:
    """Download ``url`` to ``target`` through ``target.part``, resuming a partial file with an
    HTTP Range request; returns the bytes transferred. A complete ``target`` is kept."""
    from tqdm.auto import tqdm

    if target.is_file() and (sha256 is None or sha256_file(target) == sha256):
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    moved = 0
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.is_file() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                if have and response.status != 206:  # the server ignored the range: start over
                    have = 0
                total = response.headers.get("Content-Length")
                total = int(total) + have if total is not None else None
                with open(part, "ab" if have else "wb") as out, tqdm(
                        total=total, initial=have, unit="B", unit_scale=True, leave=False,
                        desc=target.name[:30], disable=not progress) as bar:
                    while block := response.read(1 << 16):
                        out.write(block)
                        moved += len(block)
                        bar.update(len(block))
                if total is not None and part.stat().st_size < total:
                    raise urllib.error.URLError("connection closed early")
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # nothing left to send: the part is complete
                break
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            if attempt == retries:
                raise DownloadError(f"{url}: {getattr(exc, 'reason', exc)} (after {retries + 1} "
                                    "tries; run the command again to resume)") from None
            time.sleep(min(2**attempt, 10) * 0.5)
    if sha256 is not None and sha256_file(part) != sha256:
        part.unlink()
        raise DownloadError(f"{url}: does not match its published sha256 (not kept)")
    part.replace(target)
    return moved


def _fetch_many(targets, progress: bool, retries: int) -> int:
    from tqdm.auto import tqdm

    moved = 0
    for url, target, digest in tqdm(targets, desc="files", unit="file", disable=not progress):
        try:
            moved += fetch(url, target, progress=False, retries=retries, sha256=digest)
        except DownloadError as exc:
            if "HTTP 404" not in str(exc):  # gone from the release: reported as missing below
                raise
    return moved


def _unpack(archive: Path, folder: Path) -> None:
    """Unpack a zip into ``folder``, refusing members that would land outside it."""
    root = folder.resolve()
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            name = PurePosixPath(member.filename)
            if name.is_absolute() or ".." in name.parts:
                raise DownloadError(f"{archive.name}: refusing member {member.filename!r}")
            target = (root / Path(*name.parts)).resolve()
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if target.is_file() and target.stat().st_size == member.file_size:
                continue  # unpacked by an earlier run
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)


def _verify(folder: Path, expected: dict[str, str], report: DownloadReport, progress: bool) -> None:
    """Match files by name (archives nest folders differently) against the manifest."""
    from tqdm.auto import tqdm

    from ser.audio import audio_files

    by_name = {PurePosixPath(path).name: digest for path, digest in expected.items()}
    found = {}
    for path in audio_files(folder):
        if ".download" not in path.parts:
            found.setdefault(path.name, path)
    for name, path in tqdm(sorted(found.items()), desc="sha256", unit="file", leave=False,
                           disable=not progress):
        digest = by_name.get(name)
        if digest is None:
            report.unverified += 1
        elif sha256_file(path) == digest:
            report.verified += 1
        else:
            report.mismatched.append(str(path))
    report.missing = sorted(name for name in by_name if name not in found)


