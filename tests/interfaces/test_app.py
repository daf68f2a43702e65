"""Streamlit page logic with AppTest (the browser test is in test_app_browser.py)."""
from __future__ import annotations

from importlib.resources import files

import pytest

from ser import EMOTIONS

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(files("ser") / "interfaces" / "app.py")


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
    assert [t.label for t in app.tabs] == ["Upload a file", "Record", "Live", "Example"]
    models = app.sidebar.selectbox[0]
    import os

    assert models.value == os.environ["SER_MODEL"] and {"default", "reference", "light"} <= set(models.options)


def test_live_tab_links_to_the_live_page_or_says_how_to_start_it(random_bundle, monkeypatch):
    monkeypatch.setenv("SER_MODEL", str(random_bundle))
    monkeypatch.delenv("SER_LIVE_PORT", raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert "ser serve" in at.tabs[2].info[0].value and "/live" in at.tabs[2].info[0].value
    monkeypatch.setenv("SER_LIVE_PORT", "8502")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception and not at.tabs[2].info
    button = at.tabs[2].get("link_button")[0]
    assert button.proto.url.endswith(":8502/live") and button.proto.label == "Open the live page"


def test_model_selector_switches_to_a_shipped_model(app):
    app.sidebar.selectbox[0].select("light")
    app.run()
    assert not app.exception
    sidebar = " ".join(m.value for m in app.sidebar.markdown)
    assert "conv_attention" in sidebar and "handcrafted front end" in sidebar
    assert "English and Italian" in " ".join(c.value for c in app.sidebar.caption)


def _analyse_example(app, name: str) -> None:
    example = next(s for s in app.selectbox if s.label.startswith("Bundled example"))
    example.select(name)
    app.button[0].click()
    app.run()
    assert not app.exception


def test_example_analysis_shows_result_and_charts(app):
    _analyse_example(app, "long_example.wav")
    # a recording: its summary (one emotion with most of the speaking time, or mixed)
    labels = [m.label for m in app.metric]
    assert labels[0] == "Recording" and labels[2] == "Utterances"
    # The share is labelled with its emotion: it cannot be read as a confidence.
    assert labels[1].startswith("Speaking time that is ") and labels[1].split()[-1] in EMOTIONS
    assert app.metric[1].value.endswith("%")
    charts = app.get("plotly_chart")
    # timeline, time shares, probabilities (in an expander), waveform, spectrogram
    assert len(charts) == 5
    import json as _json

    specs = [_json.loads(c.proto.spec) for c in charts]
    titles = [spec["layout"]["title"]["text"] for spec in specs]
    assert titles[0].startswith("Emotion of each utterance") and titles[3].startswith("Waveform")
    timeline = specs[0]["data"]
    assert sum(len(t["base"]) for t in timeline) >= 2  # a bar per utterance, a trace per emotion
    assert all(t["marker"]["color"].startswith("#") for t in timeline)
    order = [EMOTIONS.index(t["name"]) for t in timeline]
    assert order == sorted(order)  # the legend in the one emotion order of the page
    # every chart over time shares one axis, so that they line up
    ranges = {tuple(specs[i]["layout"]["xaxis"]["range"]) for i in (0, 3, 4)}
    assert len(ranges) == 1
    assert specs[2]["layout"]["xaxis"]["tickvals"][-1] == 100  # probability ticks reach 100
    # the waveform draws the true peak: its max trace reaches the loudest sample
    from importlib.resources import files

    import numpy as np

    from ser.audio import decode

    y = decode(str(files("ser") / "examples" / "long_example.wav"), 16_000).samples
    assert max(specs[3]["data"][0]["y"]) == pytest.approx(float(np.max(y)), abs=1e-4)  # 4 digits


def test_a_clip_shows_emotion_and_confidence(app):
    _analyse_example(app, "speech_example.wav")
    assert [m.label for m in app.metric] == ["Emotion", "Confidence"]


def test_charts_stay_screen_sized_and_silence_stays_dark(random_bundle):
    """A 10-minute input gives at most 1,000 columns of spectrogram (the payload does not grow
    with length), and digital silence is drawn on the scale's black floor."""
    import numpy as np

    from ser.interfaces.app import FLOOR_DB, SCREEN_COLUMNS, spectrogram_chart, waveform_chart
    from ser.serving.inference import EmotionRecognizer

    rec = EmotionRecognizer.load(random_bundle)
    rng = np.random.default_rng(0)
    long = (0.1 * rng.standard_normal(600 * 16_000)).astype(np.float32)
    spec = spectrogram_chart(long, rec).to_plotly_json()
    heat = spec["data"][0]
    assert len(heat["x"]) <= SCREEN_COLUMNS and len(heat["z"][0]) == len(heat["x"])
    assert len(waveform_chart(long, 16_000).to_plotly_json()["data"][0]["x"]) <= SCREEN_COLUMNS
    silent = spectrogram_chart(np.zeros(3 * 16_000, np.float32), rec).to_plotly_json()["data"][0]
    assert silent["zmax"] == FLOOR_DB + 80 and np.max(silent["z"]) == silent["zmin"]


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


def test_the_sidebar_says_how_the_training_speech_was_spoken():
    """One phrase per kind of speech, details in brackets: never "acted and acted (…)"."""
    from ser.corpora import describe_corpora
    from ser.corpora import styles_phrase

    styles = describe_corpora(["ravdess", "banglaser", "turev-db"])["styles"]
    assert styles_phrase(styles) == ("acted speech (some non-professional, phones and laptops; "
                                     "some single words)")
    assert styles_phrase(describe_corpora(["ravdess", "crema-d"])["styles"]) == "acted speech"


def test_a_long_recordings_timeline_shows_a_minute_with_a_slider():
    from ser.interfaces.app import TIMELINE_WINDOW_S, timeline_chart
    from ser.serving.results import Segment

    segments = [Segment(t, t + 1.5, EMOTIONS[int(t) % 8], 0.6) for t in range(0, 600, 3)]
    long = timeline_chart(segments, 600.0).layout.xaxis
    assert tuple(long.range) == (0, TIMELINE_WINDOW_S) and long.rangeslider.visible
    short = timeline_chart(segments[:5], 15.0).layout.xaxis
    assert tuple(short.range) == (0, 15.0) and not short.rangeslider.visible
