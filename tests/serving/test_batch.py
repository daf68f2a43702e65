"""Batch prediction: the local and Ray engines agree, runs resume, every output format."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser import EMOTIONS
from ser.serving import batch
from ser.interfaces.cli import main
from ser.common import ConfigError

from ..conftest import speech


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """20 real corpus clips (when ../shared/corpora is there; else generated speech), a file
    that is not audio, and a 20-s recording of three utterances."""
    from ..conftest import CORPORA

    root = tmp_path_factory.mktemp("batch")
    if CORPORA.is_dir():
        from ser.training.datasets import scan

        records = scan(CORPORA / "ravdess").records[::60] + scan(CORPORA / "emovo").records[::40]
        files = [r.path for r in records][:20]
    else:
        files = []
        for i in range(20):
            path = root / f"clip{i}.wav"
            sf.write(path, speech(0.8 + 0.03 * i), 16_000)
            files.append(str(path))
    bad = root / "bad.wav"
    bad.write_bytes(b"not audio" * 100)
    gap = np.zeros(3 * 16_000, np.float32)
    long = root / "long.flac"
    sf.write(long, np.concatenate([gap, speech(), gap, speech(1.2), gap, speech(0.9), gap]), 16_000)
    return [*files, str(bad), str(long)]


def test_ray_engine_gives_the_local_engine_answers(inputs):
    pytest.importorskip("ray")
    local, failed_local = batch.run(inputs, model="light", engine="local")
    remote, failed_ray = batch.run(inputs, model="light", engine="ray", actors=2, cpus_per_actor=0.5)
    assert failed_local == failed_ray == 1 and len(local) == len(remote) == len(inputs)
    for a, b in zip(local, remote):
        assert a["path"] == b["path"]
        if "error" in a:
            assert a == b and "not a recognised audio file" in a["error"]
            continue
        assert a["emotion"] == b["emotion"]
        assert [s["emotion"] for s in a["segments"]] == [s["emotion"] for s in b["segments"]]
        for k in EMOTIONS:
            assert abs(a["probabilities"][k] - b["probabilities"][k]) <= 1e-5
    assert len(local[-1]["segments"]) == 3  # the long recording's timeline, in both


def _count_predicted(monkeypatch) -> list[str]:
    """The inputs the local engine is asked to predict from now on, in order."""
    predicted = []
    original = batch._local_rows

    def counting(sources, *args):
        predicted.extend(sources)
        return original(sources, *args)

    monkeypatch.setattr(batch, "_local_rows", counting)
    return predicted


def test_resume_skips_files_done_and_redoes_changed_ones(inputs, tmp_path, monkeypatch):
    files = [str(tmp_path / f"{i}.wav") for i in range(4)]
    for i, f in enumerate(files):
        sf.write(f, speech(0.9 + 0.1 * i), 16_000)
    out = tmp_path / "out.jsonl"
    rows, _ = batch.run(files, model="light", output=out, fmt="jsonl")
    assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == files
    sf.write(files[2], speech(1.5), 16_000)  # changed content: must be redone
    predicted = _count_predicted(monkeypatch)
    again, _ = batch.run(files + [files[0]], model="light", output=out, fmt="jsonl", resume=True)
    assert predicted == [files[2]]
    assert again[0] == rows[0] and again[2] != rows[2]


def test_a_uri_is_fetched_once_per_run_and_resumes_by_its_content(tmp_path, monkeypatch):
    """Remote inputs (here a stand-in store behind batch.sources.read_source) are fetched once: the
    worker hashes the bytes it fetched for the journal instead of a second transfer."""
    import hashlib
    import io

    store, fetched = {}, []
    for i in range(3):
        buf = io.BytesIO()
        sf.write(buf, speech(1.0 + 0.2 * i), 16_000, format="WAV")
        store[f"mem://bucket/{i}.wav"] = buf.getvalue()

    def fetch(source):
        fetched.append(source)
        return store[source]

    from ser.serving.batch import engines, sources

    for module in (batch, sources, engines):  # every module that binds the names
        if hasattr(module, "read_source"):
            monkeypatch.setattr(module, "read_source", fetch)
        monkeypatch.setattr(module, "is_uri", lambda source: source.startswith("mem://"))
    uris, out = sorted(store), tmp_path / "out.jsonl"
    rows, _ = batch.run(uris, model="light", output=out, fmt="jsonl")
    assert sorted(fetched) == uris and all("emotion" in r for r in rows)
    journal = [json.loads(line) for line in (tmp_path / "out.jsonl.journal.jsonl").read_text().splitlines()[1:]]
    assert {e["row"]["path"]: e["sha256"] for e in journal} == {
        u: hashlib.sha256(store[u]).hexdigest() for u in uris}
    fetched.clear()
    buf = io.BytesIO()
    sf.write(buf, speech(1.7), 16_000, format="WAV")
    store[uris[1]] = buf.getvalue()  # changed in the store: redone
    again, _ = batch.run(uris, model="light", output=out, fmt="jsonl", resume=True)
    # One fetch each to check the content, and one more for the changed input's prediction.
    assert sorted(fetched) == sorted(uris + [uris[1]])
    assert again[0] == rows[0] and again[2] == rows[2] and again[1] != rows[1]


def test_cli_formats_parquet_and_list_file(inputs, tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    listing = tmp_path / "list.txt"
    listing.write_text("# inputs\n" + "\n".join(inputs[-3:]) + "\n")
    out = tmp_path / "out.parquet"
    code = main(["predict", "--from-list", str(listing), "--model", "light", "--format", "parquet",
                 "--output", str(out)])
    assert code == 1  # the bad file
    assert "1 of 3 files failed" in capsys.readouterr().err
    table = pq.read_table(out).to_pylist()
    assert [r["path"] for r in table] == inputs[-3:]
    assert table[1]["error"] and table[2]["emotion"] in EMOTIONS
    assert len(table[2]["segments"]) == 3 and table[2]["angry"] is not None  # nested, not JSON text
    with pytest.raises(SystemExit):
        main(["predict", inputs[0], "--engine", "spark"])
    assert main(["predict", inputs[0], "--format", "parquet"]) == 1  # needs --output
    assert "needs --output" in capsys.readouterr().err


def _clips(tmp_path, n=3):
    files = [str(tmp_path / f"c{i}.wav") for i in range(n)]
    for i, f in enumerate(files):
        sf.write(f, speech(0.9 + 0.1 * i), 16_000)
    return files


def test_resume_refuses_another_model_or_settings_and_restart_starts_anew(tmp_path, capsys):
    """A journal records the model's identity and the settings: resuming with others would
    return the old model's rows as if they were this one's (issue 20), so it is refused."""
    files, out = _clips(tmp_path), tmp_path / "out.jsonl"
    batch.run(files, model="light", output=out, fmt="jsonl", max_clip_s=5.0)
    header = json.loads((tmp_path / "out.jsonl.journal.jsonl").read_text().splitlines()[0])
    assert header["model"]["name"] == "light" and len(header["model"]["config_sha256"]) == 64
    assert header["settings"] == {"max_clip_s": 5.0}
    with pytest.raises(ConfigError, match="it used model 'light', this run 'reference'"):
        batch.run(files, model="reference", output=out, fmt="jsonl", resume=True, max_clip_s=5.0)
    with pytest.raises(ConfigError, match="settings differ: max_clip_s 5.0 then, 3.0 now"):
        batch.run(files, model="light", output=out, fmt="jsonl", resume=True, max_clip_s=3.0)
    # Without --resume or --restart an existing journal is never silently overwritten.
    with pytest.raises(ConfigError, match=r"journal of an earlier run \(3 rows\).*--restart"):
        batch.run(files, model="reference", output=out, fmt="jsonl")
    code = main(["predict", *files, "--model", "reference", "--output", str(out), "--resume",
                 "--format", "jsonl"])
    assert code == 1 and capsys.readouterr().err.count("\n") == 1  # one line, no traceback
    fresh, _ = batch.run(files, model="reference", output=out, fmt="jsonl", restart=True)
    clean, _ = batch.run(files, model="reference")
    assert fresh == clean
    again, _ = batch.run(files, model="reference", output=out, fmt="jsonl", resume=True)
    assert again == clean
    (tmp_path / "out.jsonl.journal.jsonl").write_text(json.dumps({"sha256": "x", "row": {"path": files[0]}}) + "\n")
    with pytest.raises(ConfigError, match="earlier ser"):  # a journal of the first format
        batch.run(files, model="reference", output=out, fmt="jsonl", resume=True)


def test_resume_tries_failed_rows_again(tmp_path, monkeypatch):
    files, out = _clips(tmp_path), tmp_path / "out.jsonl"
    moved = tmp_path / "aside.wav"
    Path(files[1]).rename(moved)
    rows, failed = batch.run(files, model="light", output=out, fmt="jsonl")
    assert failed == 1 and "error" in rows[1]
    moved.rename(files[1])  # restored
    predicted = _count_predicted(monkeypatch)
    again, failed = batch.run(files, model="light", output=out, fmt="jsonl", resume=True)
    assert predicted == [files[1]] and failed == 0 and again[0] == rows[0]


def test_file_and_http_uris_and_relative_paths(tmp_path, monkeypatch):
    """file:// (with an escaped space) and http:// on loopback read the same audio as the path;
    a relative path is resolved on the driver and reported as given; errors name the path once."""
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import quote

    folder = tmp_path / "sub dir"
    folder.mkdir()
    clip = folder / "clip ü.wav"
    sf.write(clip, speech(), 16_000)
    monkeypatch.chdir(tmp_path)
    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        http = f"http://127.0.0.1:{server.server_address[1]}/{quote(clip.name)}"
        sources = [str(clip), "file://" + quote(str(clip)), "sub dir/clip ü.wav", http,
                   "sub dir/missing.wav", http.replace("clip", "nothing")]
        rows, failed = batch.run(sources, model="light")
    finally:
        server.shutdown()
        server.server_close()
    assert [r["path"] for r in rows] == sources and failed == 2
    assert rows[0]["probabilities"] == rows[1]["probabilities"] == rows[2]["probabilities"] == rows[3]["probabilities"]
    assert "sub dir/missing.wav" not in rows[4]["error"] and "404" in rows[5]["error"]


def test_parquet_has_one_schema_for_any_content(inputs, tmp_path):
    """All results, all errors and a mix write the same columns and types, and shards of
    several runs read as one table (issue 20: `error` typed null, 13 columns instead of 18)."""
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow.dataset as ds

    shards = tmp_path / "shards"
    shards.mkdir()
    for name, part in (("ok", inputs[:2]), ("bad", [inputs[-2], str(tmp_path / "none.wav")]),
                       ("mixed", inputs[-3:])):
        batch.run(part, model="light", output=shards / f"{name}.parquet", fmt="parquet")
    files = sorted(str(f) for f in shards.glob("*.parquet"))  # journals sit beside them
    schemas = {pq.read_schema(f) for f in files}
    assert len(files) == 3 and len(schemas) == 1 and next(iter(schemas)) == batch.parquet_schema()
    table = ds.dataset(files, format="parquet").to_table().to_pylist()
    assert len(table) == 7 and sum(r["error"] is not None for r in table) == 3
    long = next(r for r in table if r["path"] == inputs[-1])
    assert [set(s) for s in long["segments"]] == [{"start_s", "end_s", "emotion", "confidence"}] * 3
    assert set(long["emotion_shares"]) == set(EMOTIONS) and long["warnings"] == []


@pytest.mark.slow
@pytest.mark.parametrize("auth", ["default", "token", "disabled"])
def test_a_real_two_node_cluster_on_loopback(auth, inputs, tmp_path):
    """`ray start` a head and a worker node (each its own raylet and ports, on 127.0.0.1), then
    `ser predict --address HOST:PORT` from another working directory with relative paths: the
    same rows as the local engine. "default": Ray's own default (a token in ~/.ray/auth_token is
    used when present: issue 20's InvalidAuthToken), "token": an operator's shared secret,
    "disabled". With the cluster still running, no --address starts a new local runtime."""
    pytest.importorskip("ray")
    import os
    import shutil
    import subprocess
    import sys

    from ..conftest import free_port

    bindir = os.path.dirname(sys.executable)
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    env = {**os.environ, "HOME": str(home), "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("RAY_AUTH_MODE", None)
    if auth == "default":
        (home / ".ray" / "auth_token").write_text("0123456789abcdef0123456789abcdef")
    if auth == "token":
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="fedcba9876543210fedcba9876543210")
    if auth == "disabled":
        env["RAY_AUTH_MODE"] = "disabled"
    head = f"127.0.0.1:{free_port()}"
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    clips = tmp_path / "data"
    clips.mkdir()
    names = []
    for source in inputs[:2] + inputs[-2:]:  # clips, the bad file, the recording
        shutil.copy(source, clips / os.path.basename(source))
        names.append(f"data/{os.path.basename(source)}")
    try:
        subprocess.run(["ray", "start", "--head", "--port", head.split(":")[1],
                        "--include-dashboard", "false", *common], env=env, check=True,
                       capture_output=True, cwd=workdir, timeout=120)
        # Ray itself joins a node to a token cluster only when told (RAY_AUTH_MODE=token);
        # `ser predict` finds the token on its own, as Ray does for --address auto.
        node_env = {**env, "RAY_AUTH_MODE": "token"} if auth == "default" else env
        subprocess.run(["ray", "start", "--address", head, *common], env=node_env, check=True,
                       capture_output=True, cwd=workdir, timeout=120)
        run = subprocess.run(["ser", "predict", *names, "--model", "light", "--engine", "ray",
                              "--address", head, "--actors", "2", "--cpus-per-actor", "0.5",
                              "--format", "jsonl"], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
        beside = subprocess.run(["ser", "predict", *names, "--model", "light", "--engine", "ray",
                                 "--format", "jsonl"], env=env, cwd=tmp_path, capture_output=True,
                                text=True, timeout=300)
    finally:
        subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True, timeout=120)
    local = subprocess.run(["ser", "predict", *names, "--model", "light", "--format", "jsonl"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == local.returncode == 1 and run.stdout, run.stderr[-2000:]  # bad file
    assert run.stdout == local.stdout == beside.stdout and run.stdout.count("\n") == 4
    assert run.stderr == local.stderr  # the same lines, and none of Ray's own
    assert "data/bad.wav: not a recognised audio file" in run.stderr


def test_unreachable_and_client_addresses_are_one_line(tmp_path, capsys):
    pytest.importorskip("ray")
    from ..conftest import free_port

    clip = _clips(tmp_path, 1)[0]
    assert main(["predict", clip, "--engine", "ray", "--address", f"127.0.0.1:{free_port()}"]) == 1
    assert "no Ray cluster answers at 127.0.0.1:" in capsys.readouterr().err
    assert main(["predict", clip, "--engine", "ray", "--address", "ray://127.0.0.1:10001"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Ray Client" in err


def test_a_lost_ray_node_is_one_line():
    """The watcher compares the alive nodes Ray reports: a node gone is said once, in one line;
    a node that stays, or the GCS briefly not answering, says nothing."""
    from ser.serving.batch.engines import NodeWatcher

    head = {"NodeID": "a", "NodeManagerAddress": "127.0.0.1", "Alive": True}
    worker = {"NodeID": "b", "NodeManagerAddress": "127.0.0.2", "Alive": True}
    answers = iter([[head, worker], [head, worker], RuntimeError("GCS"), [head, {**worker, "Alive": False}], [head]])

    def nodes():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    said = []
    watcher = NodeWatcher(nodes, say=said.append)
    for _ in range(4):
        watcher.check()
    assert said == ["ser: warning: Ray node 127.0.0.2 left the cluster (1 left); its files are "
                    "retried on the others, output may pause meanwhile"]
