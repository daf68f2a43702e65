"""The engines that run a batch: ``local`` (:meth:`EmotionRecognizer.predict_many`, a bounded
process pool) and ``ray`` (Ray Data: an actor pool, each actor loading the bundle once)."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from ser.audio import AudioError
from ser.common import ConfigError
from ser.serving.batch.sources import error_row, is_uri, local_path, predict_row
from ser.serving.inference import EmotionRecognizer


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
                limits: dict, speakers: dict[str, str] | None = None) -> Iterator[tuple[dict, str | None]]:
    """Rows in input order; local files named in ``speakers`` are answered per speaker
    session (a URI is answered alone)."""
    recognizer = EmotionRecognizer.load(model)
    local = [s for s in sources if not is_uri(s)]
    named = [speakers.get(s) for s in local] if speakers else None
    results = iter(recognizer.predict_many([local_path(s) for s in local], workers=workers,
                                           speakers=named, **limits))
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
        # One actor per CPU of the cluster (each runs the encoder on one thread), each reserving
        # a little under a CPU: Ray's own tasks need the rest (on 2 cores, 2 one-CPU actors
        # starve them and hang; 2 of 0.75 ran 200 clips in 134 s where one actor took 198 s).
        actors = actors or max(1, int(cpus))
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
        watcher = NodeWatcher(ray.nodes)
        watcher.start()
        for row in predicted.iter_rows():
            if stats is not None:
                stats["actor_peak_rss_mb"] = max(stats.get("actor_peak_rss_mb", 0.0),
                                                 float(row["actor_peak_rss_mb"]))
            yield json.loads(row["row"]), row["sha256"] or None
    finally:
        if "watcher" in locals():
            watcher.stop()
        if started_here:
            ray.shutdown()


class NodeWatcher:
    """Says in one line when a Ray node leaves the cluster while a batch runs: its actors' work
    is then retried on the other nodes, and output may pause meanwhile (Ray notices a lost node
    after its health checks time out, about a minute or more)."""

    def __init__(self, nodes, say=None, every_s: float = 5.0):
        import sys

        self.nodes, self.every_s = nodes, every_s
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self.alive: dict[str, str] = {}
        self.alive = self._alive()
        self._stop = None

    def _alive(self) -> dict[str, str]:
        try:
            return {n["NodeID"]: n.get("NodeManagerAddress", "?") for n in self.nodes() if n.get("Alive")}
        except Exception:  # noqa: BLE001 - the GCS briefly unreachable: ask again next time
            return dict(self.alive)

    def check(self) -> None:
        now = self._alive()
        for node, address in self.alive.items():
            if node not in now:
                self.say(f"ser: warning: Ray node {address} left the cluster ({len(now)} left); "
                         "its files are retried on the others, output may pause meanwhile")
        self.alive = now

    def start(self) -> None:
        import threading

        self._stop = threading.Event()

        def loop():
            while not self._stop.wait(self.every_s):
                self.check()

        threading.Thread(target=loop, name="ser-ray-nodes", daemon=True).start()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
