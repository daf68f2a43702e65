"""`ser datasets download` against a local HTTP server (loopback only): a tiny generated
archive, a connection that breaks mid-file and is resumed, per-file sha256 checks."""
from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.interfaces.cli import main
from ser.training.datasets import scan
from ser.training.download import DownloadError, download_corpus, manifest


class _Server:
    """Serves ``files`` (name -> bytes) with Range support; the first ``break_first`` requests
    of each file stop after half the body, as a dropped connection does."""

    def __init__(self, files: dict[str, bytes], break_first: int = 0):
        self.files, self.requests, self.ranges = files, [], []
        self.breaks = dict.fromkeys(files, break_first)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/").split("?")[0]
                outer.requests.append(name)
                body = outer.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if "Range" in self.headers:
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    outer.ranges.append((name, start))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                rest = body[start:]
                if outer.breaks.get(name, 0) > 0:
                    outer.breaks[name] -= 1
                    self.wfile.write(rest[: len(rest) // 2])
                    self.wfile.flush()
                    self.connection.close()
                    return
                self.wfile.write(rest)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _wav(seed: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.random.default_rng(seed).uniform(-0.1, 0.1, 1600).astype(np.float32),
             16_000, format="WAV")
    return buf.getvalue()


@pytest.fixture
def ravdess_archive():
    """A zip laid out like the Zenodo archive, and a manifest of its files."""
    names = [f"Actor_{a:02d}/03-01-{e:02d}-01-01-01-{a:02d}.wav" for a in (1, 2) for e in (1, 5)]
    blobs = {name: _wav(i) for i, name in enumerate(names)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, blob in blobs.items():
            zf.writestr(name, blob)
    expected = {name: hashlib.sha256(blob).hexdigest() for name, blob in blobs.items()}
    return buf.getvalue(), expected


def test_archive_download_resumes_and_checks_every_file(tmp_path, ravdess_archive):
    archive, expected = ravdess_archive
    server = _Server({"rav.zip": archive}, break_first=1)
    try:
        source = {"archive": f"{server.url}/rav.zip", "archive_name": "rav.zip"}
        report = download_corpus("ravdess", tmp_path, source=source, expected=expected,
                                 progress=False, retries=2)
        assert server.ranges and server.ranges[0][1] == len(archive) // 2  # resumed, not restarted
        assert (report.verified, report.unverified, report.missing, report.mismatched) == (4, 0, [], [])
        found = scan(tmp_path / "ravdess")
        assert len(found.records) == 4 and {r.speaker for r in found.records} == {"ravdess:01", "ravdess:02"}
        assert not (tmp_path / "ravdess" / ".download" / "rav.zip").exists()  # archive removed
        before = len(server.requests)
        again = download_corpus("ravdess", tmp_path, source=source, expected=expected, progress=False)
        assert again.verified == 4 and len(server.requests) == before  # nothing fetched twice
    finally:
        server.close()


def test_a_changed_file_is_refused_and_unlisted_files_are_counted(tmp_path, ravdess_archive):
    archive, expected = ravdess_archive
    tampered = dict(expected)
    first = sorted(tampered)[0]
    tampered[first] = "0" * 64
    del tampered[sorted(tampered)[-1]]  # a file of the release the manifest does not list
    tampered["Actor_03/03-01-01-01-01-01-03.wav"] = "1" * 64  # listed, not in the release
    server = _Server({"rav.zip": archive})
    try:
        source = {"archive": f"{server.url}/rav.zip", "archive_name": "rav.zip"}
        with pytest.raises(DownloadError, match="1 file\\(s\\) of ravdess do not match"):
            download_corpus("ravdess", tmp_path, source=source, expected=tampered, progress=False)
        report = (tmp_path / "ravdess" / ".download" / "report.json").read_text()
        assert '"unverified": 1' in report and "03-01-01-01-01-01-03.wav" in report
    finally:
        server.close()


def test_per_file_download_through_the_cli_mirror(tmp_path, capsys):
    """CREMA-D is fetched file by file: through --mirror, the shipped manifest's real names;
    the generated files are not the real ones, so the command must say they do not match."""
    names = list(manifest("crema-d"))
    assert len(names) == 5808 and names[0].startswith("AudioWAV/")
    served = {names[0]: _wav(1), "VideoDemographics.csv": b"ActorID,Age,Sex,Race,Ethnicity\n"}
    server = _Server(served)
    try:
        code = main(["datasets", "download", "crema-d", "--to", str(tmp_path), "--mirror",
                     server.url, "--quiet"])
    finally:
        server.close()
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("ser: error: ") and "does not match its published sha256" in err
    assert (tmp_path / "crema-d" / "VideoDemographics.csv").is_file()
    assert not (tmp_path / "crema-d" / names[0]).exists()  # refused at once, never kept


def test_unknown_and_sourceless_corpora_are_one_line(tmp_path, capsys):
    assert main(["datasets", "download", "emovo", "--to", str(tmp_path)]) == 1
    assert "no stable public download" in capsys.readouterr().err
    assert main(["datasets", "download", "nosuch", "--to", str(tmp_path)]) == 1
    assert "known: banglaser, crema-d, emovo, nemo, ravdess, tess" in capsys.readouterr().err
    assert main(["datasets", "download", "banglaser", "--to", str(tmp_path)]) == 1
    assert "Mendeley Data" in capsys.readouterr().err


def test_the_nemo_manifest_lists_what_the_reader_reads():
    """Every file of the nEMO manifest (the 6 actors the shipped models used) is named as the
    nEMO reader expects, with the six emotions of the corpus and 6 speakers."""
    from ser.training.datasets import parse_nemo
    from ser.training.download import SOURCES, manifest

    files = manifest("nemo")
    records = [parse_nemo(Path(name)) for name in files]
    assert len(files) == 2862 and all(r is not None for r in records)
    assert {r.label for r in records} == {"angry", "fear", "happy", "neutral", "sad", "surprise"}
    assert len({r.speaker for r in records}) == 6
    assert all(len(d) == 64 for d in files.values())
    assert SOURCES["nemo"]["per_file"].endswith("/66de9999a8f2f605eb5f64841790aa5cb0877782/")


def test_archive_members_cannot_escape_the_folder(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.wav", b"x")
    server = _Server({"bad.zip": buf.getvalue()})
    try:
        with pytest.raises(DownloadError, match="refusing member"):
            download_corpus("ravdess", tmp_path / "in", source={
                "archive": f"{server.url}/bad.zip", "archive_name": "bad.zip"}, expected={},
                progress=False)
    finally:
        server.close()
    assert not (tmp_path / "evil.wav").exists()
