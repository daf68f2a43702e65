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
import time
from pathlib import Path
from typing import Iterable, Sequence

from ser.common import ConfigError
from ser.serving.batch.engines import _local_rows, _ray_rows, connect_ray  # noqa: F401
from ser.serving.batch.formats import (  # noqa: F401
    FORMATS, NESTED_FIELDS, flat_row, format_rows, parquet_schema, write,
)
from ser.serving.batch.journal import (  # noqa: F401
    JOURNAL_VERSION, _read_journal, journal_rows, run_identity,
)
from ser.serving.batch.sources import (  # noqa: F401
    content_hash, error_row, expand_inputs, is_uri, local_path, predict_row, read_source,
    read_speakers,
)


ENGINES = ("local", "ray")


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
    speakers: dict[str, str] | None = None,
    adapt: bool = True,
) -> tuple[list[dict], int]:
    """Predict every source; returns (rows in input order, number of failures) and writes the
    output file when one is given. ``resume``: go on from the journal of an earlier run with
    the same model and settings; ``restart``: discard that journal and start anew.
    ``speakers``: source -> speaker; one speaker's files are answered as one session
    (:meth:`EmotionRecognizer.adapt_speakers`; local engine). ``adapt=False``: nothing is
    adapted to its speaker."""
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
    if speakers and engine != "local":
        raise ConfigError("--speakers runs on the local engine (a speaker's files are answered "
                          "together, on one machine)")
    if speakers and not adapt:
        raise ConfigError("--speakers and --no-adapt exclude each other")
    limits = {k: v for k, v in (("max_clip_s", max_clip_s), ("max_duration_s", max_duration_s))
              if v is not None}
    if not adapt:  # passed to every prediction, and recorded in the journal like the limits
        limits["adapt"] = False
    settings = dict(limits)
    if speakers:  # the grouping changes answers: a journal of another grouping is refused
        digest = hashlib.sha256(json.dumps(sorted(speakers.items())).encode()).hexdigest()[:12]
        settings["speakers"] = digest
    header = {"journal": JOURNAL_VERSION, **run_identity(model, settings)} if journal else {}
    if journal is not None and journal.is_file() and not (resume or restart):
        raise ConfigError(f"{output} has the journal of an earlier run ({journal_rows(journal)} "
                          "rows): pass --resume to go on from it, or --restart to start anew")
    done = _read_journal(journal, header) if resume and journal is not None else {}
    # Content hashes for the journal: local files are read here (cheap, and the page cache
    # serves the decoder); a URI only when resuming needs its hash to decide, else the worker
    # hashes the bytes it fetches.
    hashes = ({s: content_hash(s) for s in sources if not is_uri(s) or s in done}
              if journal is not None else {})
    # Kept: rows of unchanged files that succeeded; failed rows are tried again.
    todo = [s for s in sources if not (s in done and done[s]["sha256"] == hashes.get(s)
                                       and "error" not in done[s]["row"])]
    if speakers:  # a speaker with any file to do is done again whole: one session
        pending = set(todo)
        again = {speakers[s] for s in pending if s in speakers}
        todo = [s for s in sources if s in pending or speakers.get(s) in again]
    rows = {s: done[s]["row"] for s in sources if s not in todo}
    if engine == "local":
        produced = _local_rows(todo, model, workers, limits, speakers)
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
    heartbeat = _Heartbeat(bar) if progress else None  # the bar moves while no file finishes
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
            if heartbeat is not None:
                heartbeat.last = time.perf_counter()
    finally:
        if heartbeat is not None:
            heartbeat.stop.set()
        bar.close()
        if handle is not None:
            handle.close()


class _Heartbeat:
    """Keeps a progress bar alive while no result arrives (a slow file, a node being replaced):
    after 10 s it says for how long it has been waiting, every second."""

    def __init__(self, bar, after_s: float = 10.0):
        import threading

        self.last, self.stop = time.perf_counter(), threading.Event()

        def beat():
            while not self.stop.wait(1.0):
                waited = time.perf_counter() - self.last
                if waited >= after_s:
                    bar.set_postfix_str(f"waiting {waited:.0f} s for the next result")

        threading.Thread(target=beat, name="ser-progress", daemon=True).start()
