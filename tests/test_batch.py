"""Batch prediction: the local and Ray engines agree, runs resume, every output format."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from ser import EMOTIONS, batch
from ser.cli import main

from .conftest import speech


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """20 real corpus clips (when ../shared/corpora is there; else generated speech), a file
    that is not audio, and a 20-s recording of three utterances."""
    from .conftest import CORPORA

    root = tmp_path_factory.mktemp("batch")
    if CORPORA.is_dir():
        from ser.datasets import scan

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


def test_resume_skips_files_done_and_redoes_changed_ones(inputs, tmp_path, monkeypatch):
    files = [str(tmp_path / f"{i}.wav") for i in range(4)]
    for i, f in enumerate(files):
        sf.write(f, speech(0.9 + 0.1 * i), 16_000)
    out = tmp_path / "out.jsonl"
    rows, _ = batch.run(files, model="light", output=out, fmt="jsonl")
    assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == files
    sf.write(files[2], speech(1.5), 16_000)  # changed content: must be redone
    predicted = []
    original = batch._local_rows

    def counting(sources, *args):
        predicted.extend(sources)
        return original(sources, *args)

    monkeypatch.setattr(batch, "_local_rows", counting)
    again, _ = batch.run(files + [files[0]], model="light", output=out, fmt="jsonl", resume=True)
    assert predicted == [files[2]]
    assert again[0] == rows[0] and again[2] != rows[2]


def test_a_uri_is_fetched_once_per_run_and_resumes_by_its_content(tmp_path, monkeypatch):
    """Remote inputs (here a stand-in store behind batch.read_source) are fetched once: the
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

    monkeypatch.setattr(batch, "read_source", fetch)
    monkeypatch.setattr(batch, "is_uri", lambda source: source.startswith("mem://"))
    uris, out = sorted(store), tmp_path / "out.jsonl"
    rows, _ = batch.run(uris, model="light", output=out, fmt="jsonl")
    assert sorted(fetched) == uris and all("emotion" in r for r in rows)
    journal = [json.loads(line) for line in (tmp_path / "out.jsonl.journal.jsonl").read_text().splitlines()]
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
    assert len(json.loads(table[2]["segments"])) == 3 and table[2]["angry"] is not None
    with pytest.raises(SystemExit):
        main(["predict", inputs[0], "--engine", "spark"])
    assert main(["predict", inputs[0], "--format", "parquet"]) == 1  # needs --output
    assert "needs --output" in capsys.readouterr().err
