"""Batch prediction: many files, one result row each, on this machine or on a Ray cluster.

* ``engine="local"``: :meth:`EmotionRecognizer.predict_many` (a bounded process pool).
* ``engine="ray"``: Ray Data — the inputs become a dataset, ``map_batches`` runs them through
  a pool of actors that each load the bundle once; streaming execution, per-block retries and
  autoscaling come from Ray. ``address`` joins a running cluster (``"auto"``, ``HOST:PORT``);
  without it a new local Ray runtime is started with this machine's cores, even when another
  cluster runs here.

Both engines give the same row for every file (the same code predicts it). Inputs are paths
(relative ones are resolved on the driver, so workers started elsewhere read the same file),
``file://`` and ``http(s)://`` URIs, or URIs that ``pyarrow.fs`` opens (``s3://``, ``gs://``,
``hdfs://``); each row's ``path`` is the input as given.

**Resumable**: with an output file, every finished row is appended at once to a journal beside
it (``OUTPUT.journal.jsonl``). Its first line records what decides an answer — the model's
identity (the sha256 of its ``config.json``, which holds the hashes of its weights), the
settings that change results and ser's version — and every row the sha256 of its file. A later
run with ``resume=True`` refuses a journal written with another model or settings (``restart``
starts a new one), keeps the rows whose file content is unchanged, and predicts again the
rest, failed rows included. The final output (any format) is written in input order.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .common import EMOTIONS, ConfigError
from .audio import AudioError
from .datasets import audio_files
from .inference import PREDICTION_FIELDS, EmotionRecognizer

FORMATS = ("table", "json", "jsonl", "csv", "parquet")
ENGINES = ("local", "ray")


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


class RayPredictor:
    """A Ray actor: loads the bundle once, then predicts batches of paths."""

    def __init__(self, model: str | None, limits: dict, threads: int = 1):
        self.recognizer = EmotionRecognizer.load(model, threads=threads)
        self.limits = limits

    def __call__(self, batch: dict) -> dict:
        import resource

        rows = [predict_row(self.recognizer, str(p), self.limits, str(where))
                for p, where in zip(batch["path"], batch["location"])]
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # for benchmarks
        return {"path": list(batch["path"]), "row": [json.dumps(r) for r, _ in rows],
                "sha256": [d or "" for _, d in rows], "actor_peak_rss_mb": [peak_mb] * len(rows)}


def _predictor_class(model: str | None, limits: dict) -> type:
    """A RayPredictor with its settings inside the class, not constructor arguments: Ray keeps
    those in the object store and warns that restarted actors may lose them."""

    class Predictor(RayPredictor):
        def __init__(self):
            super().__init__(model, limits)

    return Predictor


def _local_rows(sources: Sequence[str], model: str | None, workers: int | None,
                limits: dict) -> Iterator[tuple[dict, str | None]]:
    recognizer = EmotionRecognizer.load(model)
    local = [local_path(s) for s in sources if not is_uri(s)]
    results = iter(recognizer.predict_many(local, workers=workers, **limits))
    for source in sources:
        if is_uri(source):
            yield predict_row(recognizer, source, limits)
            continue
        result = next(results)
        yield (error_row(source, result) if isinstance(result, AudioError)
               else {**result.to_dict(), "path": source}), None


def _quiet_ray() -> None:
    """Ray's own logging off (``ser predict --verbose`` keeps it): Ray Data's plan and progress
    lines (read when ``ray.data`` is imported), the token-authentication notice."""
    import logging

    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    # The core worker's own lines (C++), e.g. a warning about Ray Data's actor constructor.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    import ray  # noqa: F401  (sets up its loggers on import; the levels below come after)

    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextmanager
def _stderr_silenced(active: bool = True):
    """Standard error (the file descriptor: Ray's C++ side writes there) to /dev/null; Python
    exceptions still propagate."""
    if not active:
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _reachable(address: str, timeout_s: float = 5.0) -> bool:
    """Whether HOST:PORT accepts a connection (Ray itself retries an unreachable head for
    minutes before failing)."""
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def _token_available() -> bool:
    """A Ray authentication token this process could present (Ray's own sources, in order)."""
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                or (Path.home() / ".ray" / "auth_token").is_file())


def connect_ray(address: str | None, quiet: bool = True) -> bool:
    """Join the cluster at ``address`` (``auto`` or ``HOST:PORT``), or start a new local runtime
    on loopback when there is none — also beside a ``ray start`` cluster on this machine.
    Returns whether this call started Ray (and so must shut it down)."""
    if address and address.startswith("ray://"):
        raise ConfigError("--address ray://… (Ray Client) is not supported by the ray engine: run "
                          "ser on a node of the cluster with --address auto, or give the head's "
                          "HOST:PORT (6379 by default)")
    if address and "RAY_AUTH_MODE" not in os.environ and _token_available():
        # What Ray does for "auto": `ray start` uses token authentication when a token exists
        # (~/.ray/auth_token; Ray 2.59+), and a driver must then present it. Set before Ray is
        # imported: Ray reads the mode once.
        os.environ["RAY_AUTH_MODE"] = "token"
    if quiet:
        _quiet_ray()
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray engine needs Ray: pip install 'ser[ray]'") from None
    if ray.is_initialized():
        return False
    if address and address != "auto" and not _reachable(address):
        raise ConfigError(f"no Ray cluster answers at {address}: start one with `ray start "
                          "--head` (its HOST:PORT is printed there), or leave --address out to "
                          "run on a new local Ray runtime")
    local = {} if address else {"num_cpus": os.cpu_count(), "_node_ip_address": "127.0.0.1"}
    try:
        with _stderr_silenced(quiet):  # the core worker announces its log level on start
            ray.init(address=address or "local", include_dashboard=False, log_to_driver=False,
                     configure_logging=False, **local)
    except Exception as exc:  # noqa: BLE001 - Ray raises several kinds; one line for each
        if not address:
            raise
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"could not join the Ray cluster at {address}: {reason} (check the "
                          "address with `ray status` on the head; a cluster with token "
                          "authentication needs its token in RAY_AUTH_TOKEN or ~/.ray/auth_token)"
                          ) from None
    return True


def _ray_rows(sources: Sequence[str], model: str | None, address: str | None, actors: int | None,
              cpus_per_actor: float | None, batch_size: int, limits: dict,
              stats: dict | None = None, verbose: bool = False) -> Iterator[tuple[dict, str | None]]:
    started_here = connect_ray(address, quiet=not verbose)
    import ray

    try:
        cpus = ray.cluster_resources().get("CPU", 1.0)
        # Leave CPU for Ray's own read tasks: on 2 cores, 2 one-CPU actors starve them (hang).
        actors = actors or max(1, int(cpus // 2))
        cpus_per_actor = cpus_per_actor or min(1.0, max(0.25, (cpus - 0.5) / actors))
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        # Where each input is read, decided here: actors run in other working directories.
        dataset = ray.data.from_items([{"path": s, "location": s if is_uri(s) else local_path(s)}
                                       for s in sources])
        predicted = dataset.map_batches(
            _predictor_class(model, limits),
            compute=ray.data.ActorPoolStrategy(min_size=actors, max_size=actors),
            num_cpus=cpus_per_actor, batch_size=batch_size)
        for row in predicted.iter_rows():
            if stats is not None:
                stats["actor_peak_rss_mb"] = max(stats.get("actor_peak_rss_mb", 0.0),
                                                 float(row["actor_peak_rss_mb"]))
            yield json.loads(row["row"]), row["sha256"] or None
    finally:
        if started_here:
            ray.shutdown()


def run(
    sources: Sequence[str],
    *,
    model: str | None = None,
    engine: str = "local",
    output: Path | None = None,
    fmt: str = "jsonl",
    resume: bool = False,
    workers: int | None = None,
    address: str | None = None,
    actors: int | None = None,
    cpus_per_actor: float | None = None,
    batch_size: int = 8,
    max_clip_s: float | None = None,
    max_duration_s: float | None = None,
    progress: bool = False,
    restart: bool = False,
    verbose: bool = False,
) -> tuple[list[dict], int]:
    """Predict every source; returns (rows in input order, number of failures) and writes the
    output file when one is given. ``resume``: go on from the journal of an earlier run with
    the same model and settings; ``restart``: discard that journal and start anew."""
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "parquet" and output is None:
        raise ConfigError("--format parquet needs --output FILE")
    if resume and output is None:
        raise ConfigError("--resume needs --output FILE (the run's journal sits beside it)")
    if resume and restart:
        raise ConfigError("--resume and --restart exclude each other")
    journal = Path(f"{output}.journal.jsonl") if output is not None else None
    limits = {k: v for k, v in (("max_clip_s", max_clip_s), ("max_duration_s", max_duration_s))
              if v is not None}
    header = {"journal": JOURNAL_VERSION, **run_identity(model, limits)} if journal else {}
    done = _read_journal(journal, header) if resume and journal is not None else {}
    # Content hashes for the journal: local files are read here (cheap, and the page cache
    # serves the decoder); a URI only when resuming needs its hash to decide, else the worker
    # hashes the bytes it fetches.
    hashes = ({s: content_hash(s) for s in sources if not is_uri(s) or s in done}
              if journal is not None else {})
    # Kept: rows of unchanged files that succeeded; failed rows are tried again.
    todo = [s for s in sources if not (s in done and done[s]["sha256"] == hashes.get(s)
                                       and "error" not in done[s]["row"])]
    rows = {s: done[s]["row"] for s in sources if s not in todo}
    if engine == "local":
        produced = _local_rows(todo, model, workers, limits)
    else:
        produced = _ray_rows(todo, model, address, actors, cpus_per_actor, batch_size, limits,
                             verbose=verbose)
    _collect(produced, todo, rows, journal, header, hashes, resume and journal.is_file(), progress)
    ordered = [rows[s] for s in sources]
    if output is not None:
        write(ordered, output, fmt)
    return ordered, sum("error" in r for r in ordered)


def _collect(produced: Iterable[dict], todo: Sequence[str], rows: dict, journal: Path | None,
             header: dict, hashes: dict, append: bool, progress: bool) -> None:
    from tqdm.auto import tqdm

    handle = open(journal, "a" if append else "w") if journal is not None else None  # noqa: SIM115
    if handle is not None and not append:
        handle.write(json.dumps(header) + "\n")
    bar = tqdm(total=len(todo), unit="file", disable=not progress, leave=False)
    failures, started = 0, time.perf_counter()
    try:
        for source, (row, digest) in zip(todo, produced):
            rows[source] = row
            failures += "error" in row
            if handle is not None:  # flushed per row: a kill loses at most the rows in flight
                entry = {"sha256": hashes.get(source) or digest, "row": row}
                handle.write(json.dumps(entry) + "\n")
                handle.flush()
            bar.update()
            bar.set_postfix(failed=failures, files_per_s=f"{bar.n / (time.perf_counter() - started):.1f}")
    finally:
        bar.close()
        if handle is not None:
            handle.close()


JOURNAL_VERSION = 2  # 1: rows only, no header (ser before the model identity was recorded)


def run_identity(model: str | None, limits: dict) -> dict:
    """What decides every answer of a run: the model actually used (the default falls back to
    light without its encoder weights), the settings that change results, ser's version."""
    from .common import __version__, sha256_file
    from .inference import resolved_bundle_path

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


def write(rows: list[dict], output: Path, fmt: str) -> None:
    if fmt == "parquet":
        _write_parquet(rows, output)
    else:
        output.write_text(format_rows(rows, fmt))


#: Result fields that are not scalars: spread into one column per emotion (probabilities) or
#: written as JSON text in flat formats.
NESTED_FIELDS = ("probabilities", "segments", "emotion_shares", "warnings")


def flat_row(row: dict) -> dict:
    """A result as flat columns: probabilities one per emotion, nested parts as JSON text."""
    flat = {k: v for k, v in row.items() if k not in NESTED_FIELDS}
    flat.update({k: row.get("probabilities", {}).get(k) for k in EMOTIONS})
    for key in NESTED_FIELDS[1:]:
        flat[key] = json.dumps(row[key]) if key in row else None
    flat.setdefault("error", None)
    return flat


def parquet_schema():
    """The one Arrow schema of every Parquet output, whatever the rows hold (all results, all
    errors, or both): the contract's scalars, one probability column per emotion (as in CSV),
    nested types for the shares, segments and warnings, and ``error``."""
    import pyarrow as pa

    emotions = pa.struct([(e, pa.float64()) for e in EMOTIONS])
    segment = pa.struct([("start_s", pa.float64()), ("end_s", pa.float64()),
                         ("emotion", pa.string()), ("confidence", pa.float64())])
    return pa.schema([
        ("path", pa.string()), ("emotion", pa.string()), ("confidence", pa.float64()),
        ("uncertain", pa.bool_()), ("duration_s", pa.float64()), ("speech_s", pa.float64()),
        *[(e, pa.float64()) for e in EMOTIONS],
        ("emotion_shares", emotions), ("segments", pa.list_(segment)),
        ("warnings", pa.list_(pa.string())), ("summary", pa.string()),
        ("summary_share", pa.float64()), ("error", pa.string()),
    ])


def _write_parquet(rows: list[dict], output: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("Parquet output needs pyarrow: pip install 'ser[ray]'") from None
    schema = parquet_schema()
    columns = {name: [] for name in schema.names}
    for row in rows:
        probabilities = row.get("probabilities") or {}
        for name in schema.names:
            columns[name].append(probabilities.get(name) if name in EMOTIONS else row.get(name))
    pq.write_table(pa.table(columns, schema=schema), output)


def format_rows(rows: list[dict], fmt: str) -> str:
    import csv
    import io

    if fmt == "jsonl":
        return "".join(json.dumps(r) + "\n" for r in rows)
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        # The contract's scalar fields, then one column per emotion (nested parts left out).
        scalars = [f for f in PREDICTION_FIELDS if f not in NESTED_FIELDS]
        fields = [*scalars, *EMOTIONS, "error"]
        writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow(flat_row(r))
        return buf.getvalue()
    rows = [r for r in rows if "error" not in r]  # the table lists results; errors go to stderr
    width = max([len(r["path"]) for r in rows] + [4])
    lines = [f"{'file':<{width}}  {'emotion':<10} {'conf':>5}  {'dur_s':>6}  {'speech_s':>8}  segments"]
    for r in rows:
        segments = r["segments"]
        if len(segments) > 1:  # a recording: its summary, then one line per utterance
            summary = r.get("summary", r["emotion"])
            shares = sorted(r["emotion_shares"].items(), key=lambda kv: -kv[1])
            label, value = summary, f"{r.get('summary_share', shares[0][1]):>5.0%}"  # of speech
            lines.append(f"{r['path']:<{width}}  {label:<10} {value}  {r['duration_s']:>6.2f}  "
                         f"{r['speech_s']:>8.2f}  {len(segments)}")
            top = ", ".join(f"{e} {v:.0%}" for e, v in shares[:3] if v > 0)
            lines.append(f"  speaking time: {top}")
            for s in segments:
                lines.append(f"  {s['start_s']:>8.2f}-{s['end_s']:<8.2f} {s['emotion']:<10} "
                             f"{s['confidence']:.2f}")
        else:
            emotion = r["emotion"] + ("?" if r.get("uncertain") else "")
            lines.append(f"{r['path']:<{width}}  {emotion:<10} {r['confidence']:>5.2f}  "
                         f"{r['duration_s']:>6.2f}  {r['speech_s']:>8.2f}  {len(segments)}")
        lines += [f"  warning: {w}" for w in r.get("warnings", [])]
    return "\n".join(lines) + "\n" if rows else ""


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
