"""Corpus readers: file names -> records with speaker, language, gender and the 8-class label.

Each corpus is read by its own naming rules (the ``parse_*`` functions below); any audio
suffix is accepted, since corpora are often re-encoded. Labels a corpus has but the project
does not (EmoDB's boredom) are skipped and counted, never guessed.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

from ser.common import EMOTIONS
from ser.audio import audio_files
from ser.common import ConfigError
from ser.corpora import CORPUS_INFO, describe_corpora  # noqa: F401  (re-exported)



@dataclass(frozen=True)
class Record:
    path: str
    corpus: str
    language: str
    speaker: str  # corpus-prefixed, so speakers of different corpora never collide
    gender: str | None  # "female", "male" or None when unknown
    label_original: str
    label: str  # one of EMOTIONS

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ScanResult:
    records: list[Record] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> count

    def extend(self, other: "ScanResult") -> None:
        self.records.extend(other.records)
        self.skipped.update(other.skipped)


class UnmappedLabel(Exception):
    """A file follows the corpus naming but its label has no project class."""


# --- per-corpus parsers: (path) -> Record | None (None: not this corpus's naming) -------------

_RAVDESS = re.compile(r"^(0[1-3])-(0[12])-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)$")
_RAVDESS_EMOTIONS = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised",
}
_RAVDESS_MAP = {"fearful": "fear", "surprised": "surprise"}


def parse_ravdess(path: Path) -> Record | None:
    m = _RAVDESS.match(path.stem)
    if not m or m.group(2) != "01":  # vocal channel 01 = speech (02 is song)
        return None
    actor = int(m.group(7))
    original = _RAVDESS_EMOTIONS[m.group(3)]
    return Record(
        str(path), "ravdess", "en", f"ravdess:{actor:02d}",
        "male" if actor % 2 else "female", original, _RAVDESS_MAP.get(original, original),
    )


_CREMA = re.compile(r"^(\d{4})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_(LO|MD|HI|XX|X)$")
_CREMA_MAP = {
    "ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad",
}


@lru_cache(maxsize=16)
def _crema_genders(folder: Path) -> dict[str, str]:
    """Actor -> sex from the VideoDemographics.csv that ships beside ``AudioWAV/``."""
    for candidate in (folder / "VideoDemographics.csv", folder.parent / "VideoDemographics.csv"):
        if candidate.is_file():
            with candidate.open(newline="") as f:
                return {
                    row["ActorID"].strip(): row["Sex"].strip().lower()
                    for row in csv.DictReader(f)
                    if row.get("ActorID") and row.get("Sex")
                }
    return {}


def parse_crema(path: Path) -> Record | None:
    m = _CREMA.match(path.stem)
    if not m:
        return None
    actor, code = m.group(1), m.group(3)
    gender = _crema_genders(path.parent).get(actor)
    return Record(
        str(path), "crema-d", "en", f"crema-d:{actor}",
        gender if gender in ("male", "female") else None, code, _CREMA_MAP[code],
    )


_EMOVO = re.compile(r"^(dis|gio|pau|rab|sor|tri|neu)-([fm]\d)-(\w+)$")
_EMOVO_MAP = {
    "dis": "disgust", "gio": "happy", "pau": "fear", "rab": "angry",
    "sor": "surprise", "tri": "sad", "neu": "neutral",
}


def parse_emovo(path: Path) -> Record | None:
    m = _EMOVO.match(path.stem)
    if not m:
        return None
    speaker = m.group(2)
    return Record(
        str(path), "emovo", "it", f"emovo:{speaker}",
        "female" if speaker.startswith("f") else "male", m.group(1), _EMOVO_MAP[m.group(1)],
    )


_EMODB = re.compile(r"^(\d\d)([a-z]\d\d)([WLEAFTN])([a-z])$")
_EMODB_MAP = {
    "W": "angry", "E": "disgust", "A": "fear", "F": "happy", "T": "sad", "N": "neutral",
}
_EMODB_NAMES = {
    "W": "anger", "L": "boredom", "E": "disgust", "A": "fear",
    "F": "happiness", "T": "sadness", "N": "neutral",
}
# EmoDB speakers and their sex (from the corpus documentation).
_EMODB_GENDER = {
    "03": "male", "08": "female", "09": "female", "10": "male", "11": "male",
    "12": "male", "13": "female", "14": "female", "15": "male", "16": "female",
}


def parse_emodb(path: Path) -> Record | None:
    m = _EMODB.match(path.stem)
    if not m:
        return None
    code = m.group(3)
    if code not in _EMODB_MAP:
        raise UnmappedLabel(f"emodb label '{_EMODB_NAMES[code]}' has no project class")
    speaker = m.group(1)
    return Record(
        str(path), "emodb", "de", f"emodb:{speaker}", _EMODB_GENDER.get(speaker),
        _EMODB_NAMES[code], _EMODB_MAP[code],
    )


_SAVEE_FLAT = re.compile(r"^(DC|JE|JK|KL)_(sa|su|a|d|f|h|n)(\d\d)$")
_SAVEE_NESTED = re.compile(r"^(sa|su|a|d|f|h|n)(\d\d)$")
_SAVEE_MAP = {
    "a": "angry", "d": "disgust", "f": "fear", "h": "happy",
    "n": "neutral", "sa": "sad", "su": "surprise",
}


def parse_savee(path: Path) -> Record | None:
    m = _SAVEE_FLAT.match(path.stem)
    if m:
        speaker, code = m.group(1), m.group(2)
    else:  # the original layout: AudioData/DC/a01.wav
        m = _SAVEE_NESTED.match(path.stem)
        if not m or path.parent.name not in ("DC", "JE", "JK", "KL"):
            return None
        speaker, code = path.parent.name, m.group(1)
    return Record(str(path), "savee", "en", f"savee:{speaker}", "male", code, _SAVEE_MAP[code])


# One clip of the official release is named OA_bite_neutral (sic); it is OAF's, in OAF_neutral/.
_TESS = re.compile(r"^(OAF|YAF|OA)_(\w+?)_(angry|disgust|fear|happy|neutral|ps|sad)$", re.IGNORECASE)
_TESS_MAP = {
    "angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy",
    "neutral": "neutral", "ps": "surprise", "sad": "sad",
}


def parse_tess(path: Path) -> Record | None:
    m = _TESS.match(path.stem)
    if not m:
        return None
    speaker, code = m.group(1).upper(), m.group(3).lower()
    speaker = "OAF" if speaker == "OA" else speaker
    return Record(str(path), "tess", "en", f"tess:{speaker}", "female", code, _TESS_MAP[code])


_NEMO = re.compile(r"^([A-Z]{2}\d)_(anger|fear|happiness|neutral|sadness|surprised)_(\d+)$")
_NEMO_MAP = {"anger": "angry", "happiness": "happy", "sadness": "sad", "surprised": "surprise"}
# Speaker sex of the nEMO actors (from the release's data.tsv, as carried by manifest.csv);
# an actor not listed gets None rather than a guess.
_NEMO_GENDER = {"EB0": "female", "KD0": "female", "MK0": "female",
                "MP0": "male", "SM0": "male", "TP0": "male"}


def parse_nemo(path: Path) -> Record | None:
    m = _NEMO.match(path.stem)
    if not m:
        return None
    speaker, code = m.group(1), m.group(2)
    return Record(str(path), "nemo", "pl", f"nemo:{speaker}", _NEMO_GENDER.get(speaker),
                  code, _NEMO_MAP.get(code, code))


# BanglaSER keeps RAVDESS's seven fields with other emotion codes; its files are read with a
# "bser-" prefix so that they can never be taken for RAVDESS (a copy from the publisher needs
# the prefix added: `ser datasets download banglaser` says so; or read it with a manifest CSV).
_BANGLA = re.compile(r"^bser-(0[1-3])-(01)-(0[1-5])-(0[12])-(0[1-3])-(0[1-3])-(\d\d)$")
_BANGLA_EMOTIONS = {"01": "happy", "02": "sad", "03": "angry", "04": "surprise", "05": "neutral"}


def parse_banglaser(path: Path) -> Record | None:
    m = _BANGLA.match(path.stem)
    if not m:
        return None
    speaker = int(m.group(7))
    label = _BANGLA_EMOTIONS[m.group(3)]
    return Record(str(path), "banglaser", "bn", f"banglaser:{speaker:02d}",
                  "male" if speaker % 2 else "female", m.group(3), label)


# TurEV-DB: Sound Source/<Emotion>/<speaker>_<code>_<word>; the code repeats the emotion.
_TUREV = re.compile(r"^(\d{4})_(kz|sk|mt|hl)_(\w+)$")
_TUREV_CODES = {"kz": "angry", "sk": "calm", "mt": "happy", "hl": "sad"}


def parse_turev(path: Path) -> Record | None:
    m = _TUREV.match(path.stem)
    if not m:
        return None
    return Record(str(path), "turev-db", "tr", f"turev-db:{m.group(1)}", None,  # sex not released
                  m.group(2), _TUREV_CODES[m.group(2)])


#: Parsers by corpus, in the order they are tried (most specific naming first).
PARSERS: dict[str, Callable[[Path], Record | None]] = {
    "ravdess": parse_ravdess,
    "crema-d": parse_crema,
    "emovo": parse_emovo,
    "tess": parse_tess,
    "savee": parse_savee,
    "emodb": parse_emodb,
    "nemo": parse_nemo,
    "banglaser": parse_banglaser,
    "turev-db": parse_turev,
}
CORPORA = tuple(PARSERS)


def scan(root: str | Path, corpus: str | None = None) -> ScanResult:
    """Read every corpus found under ``root`` by file naming (or only ``corpus``).

    Files that match no corpus's naming are counted under ``skipped``.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such directory")
    if corpus is not None and corpus not in CORPORA:
        raise ConfigError(f"unknown corpus {corpus!r}; known: {', '.join(CORPORA)}")
    parsers = PARSERS if corpus is None else {corpus: PARSERS[corpus]}
    result = ScanResult()
    for path in audio_files(root):
        for parse in parsers.values():
            try:
                record = parse(path)
            except UnmappedLabel as exc:
                result.skipped[str(exc)] += 1
                break
            if record is not None:
                result.records.append(record)
                break
        else:
            result.skipped["name follows no known corpus naming"] += 1
    return result


def load_folder(root: str | Path, corpus: str = "custom", language: str = "unknown") -> ScanResult:
    """Generic layout: one sub-folder per label (``root/angry/x.wav``); speaker unknown.

    Folder names are matched to the 8 classes case-insensitively, with common synonyms.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory")
    result = ScanResult()
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = normalise_label(folder.name)
        files = audio_files(folder)
        if label is None:
            result.skipped[f"folder '{folder.name}' is not one of the 8 classes"] += len(files)
            continue
        for path in files:
            result.records.append(
                Record(str(path), corpus, language, f"{corpus}:unknown", None, folder.name, label)
            )
    return result


def load_csv(path: str | Path, corpus: str = "custom", language: str = "unknown") -> ScanResult:
    """Generic table: columns ``path`` and ``label``, optional ``speaker``, ``gender``, ``language``.

    Relative paths are read relative to the CSV file.
    """
    path = Path(path)
    result = ScanResult()
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"path", "label"} - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            label = normalise_label(row["label"])
            if label is None:
                result.skipped[f"label '{row['label']}' is not one of the 8 classes"] += 1
                continue
            audio = Path(row["path"])
            if not audio.is_absolute():
                audio = path.parent / audio
            speaker = (row.get("speaker") or "").strip() or "unknown"
            gender = (row.get("gender") or "").strip().lower() or None
            result.records.append(
                Record(
                    str(audio), corpus, (row.get("language") or language).strip(),
                    f"{corpus}:{speaker}", gender, row["label"], label,
                )
            )
    return result


_SYNONYMS = {
    "anger": "angry", "angry": "angry", "calm": "calm", "disgust": "disgust",
    "disgusted": "disgust", "fear": "fear", "fearful": "fear", "afraid": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "neutral": "neutral",
    "sad": "sad", "sadness": "sad", "surprise": "surprise", "surprised": "surprise",
    "ps": "surprise",
}


def normalise_label(name: str) -> str | None:
    label = _SYNONYMS.get(name.strip().lower())
    assert label is None or label in EMOTIONS
    return label


def load_records(data: Iterable[str | Path]) -> tuple[list[Record], dict]:
    """Records from corpus folders (auto-detected naming), generic CSV files, or a folder with
    one sub-folder per emotion (``my_corpus/angry/x.wav``); and the counts of skipped files."""
    result = ScanResult()
    data = list(data)
    for source in data:
        source = Path(source)
        if source.suffix.lower() == ".csv":
            result.extend(load_csv(source))
            continue
        found = scan(source)
        if not found.records and source.is_dir() and _has_emotion_folders(source):
            found = load_folder(source, corpus=source.name)
        result.extend(found)
    if not result.records:
        raise ConfigError(f"no labelled audio found in {', '.join(map(str, data))}: give corpus "
                          "folders, a CSV (path,label[,speaker]), or a folder with one sub-folder "
                          "per emotion")
    return result.records, dict(result.skipped)


def _has_emotion_folders(root: Path) -> bool:
    return any(child.is_dir() and normalise_label(child.name) for child in root.iterdir())


#: What a model card and the app say about each known corpus: one table, next to the parsers.
def summarise(records: Iterable[Record]) -> dict:
    """Counts per corpus, class and speaker (for ``ser datasets scan`` and model cards)."""
    records = list(records)
    by_corpus: dict[str, dict] = {}
    for corpus in sorted({r.corpus for r in records}):
        rs = [r for r in records if r.corpus == corpus]
        by_corpus[corpus] = {
            "files": len(rs),
            "speakers": len({r.speaker for r in rs}),
            "classes": dict(sorted(Counter(r.label for r in rs).items())),
        }
    return {"files": len(records), "corpora": by_corpus}
