"""Streamlit page logic with AppTest (the browser test is in test_app_browser.py)."""
from __future__ import annotations

from importlib.resources import files

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(files("ser") / "app.py")


@pytest.fixture
def app(random_bundle, monkeypatch):
    monkeypatch.setenv("SER_MODEL", str(random_bundle))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def test_page_shows_model_panel_and_inputs(app):
    assert "Speech emotion recognition" in app.title[0].value
    sidebar = " ".join(m.value for m in app.sidebar.markdown)
    assert "conv_attention" in sidebar and "angry" in sidebar
    assert "Non-commercial" in " ".join(c.value for c in app.sidebar.caption)
    assert [t.label for t in app.tabs] == ["Upload a file", "Record", "Example"]
    models = app.sidebar.selectbox[0]
    import os

    assert models.value == os.environ["SER_MODEL"] and {"default", "reference", "light"} <= set(models.options)


def test_model_selector_switches_to_a_shipped_model(app):
    app.sidebar.selectbox[0].select("light")
    app.run()
    assert not app.exception
    sidebar = " ".join(m.value for m in app.sidebar.markdown)
    assert "conv_attention" in sidebar and "handcrafted front end" in sidebar
    assert "English and Italian" in " ".join(c.value for c in app.sidebar.caption)


def test_example_analysis_shows_result_and_charts(app):
    example = next(s for s in app.selectbox if s.label.startswith("Bundled example"))
    example.select("long_example.wav")
    app.button[0].click()
    app.run()
    assert not app.exception
    labels = [m.label for m in app.metric]
    assert labels == ["Emotion", "Confidence"]
    assert app.metric[1].value.endswith("%")
    charts = app.get("plotly_chart")
    # probabilities, timeline and time shares (the long example has several utterances),
    # waveform, spectrogram
    assert len(charts) == 5
    import json as _json

    specs = [_json.loads(c.proto.spec) for c in charts]
    titles = [spec["layout"]["title"]["text"] for spec in specs]
    assert titles[1].startswith("Emotion of each utterance") and titles[3].startswith("Waveform")
    timeline = specs[1]["data"]
    assert len(timeline) >= 2 and all(bar["marker"]["color"].startswith("#") for bar in timeline)
    # the waveform draws the true peak: its max trace reaches the loudest sample
    from importlib.resources import files

    import numpy as np

    from ser.audio import decode

    y = decode(str(files("ser") / "examples" / "long_example.wav"), 16_000).samples
    assert max(specs[3]["data"][0]["y"]) == pytest.approx(float(np.max(y)), abs=1e-6)


def test_shipped_model_panel_reports_cross_validation(monkeypatch):
    monkeypatch.delenv("SER_MODEL", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert "whisper-base" in sidebar
    assert "5-fold cross-validation grouped by speaker" in sidebar and "ravdess" in sidebar


def test_bad_model_path_is_reported_on_the_page(monkeypatch, tmp_path):
    monkeypatch.setenv("SER_MODEL", str(tmp_path / "missing"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert "could not be loaded" in at.error[0].value
