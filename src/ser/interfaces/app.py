"""Streamlit web app: ``ser app`` (or ``streamlit run src/ser/interfaces/app.py``).

Upload a file or record from the microphone; see the emotion with its confidence, all eight
probabilities, the waveform, the mel spectrogram and, for long recordings, a timeline.
The page calls :mod:`ser.serving.inference` and :mod:`ser.audio`; it computes nothing itself.
"""

from __future__ import annotations

import os
from importlib.resources import files

import numpy as np
import streamlit as st

from ser.common import EMOTIONS
from ser.audio import DEFAULT_MAX_DURATION_S, AudioError, decode
from ser.serving.bundle import SHIPPED_MODELS
from ser.corpora import describe_corpora, styles_phrase
from ser.frontends.features import log_mel_spectrogram
from ser.serving.inference import EmotionRecognizer
from ser.serving.results import DOMINANT_SHARE, MIXED, NO_SPEECH

MAX_UPLOAD_MB = float(os.environ.get("SER_APP_MAX_UPLOAD_MB", "25"))
MAX_DURATION_S = float(os.environ.get("SER_APP_MAX_DURATION_S", DEFAULT_MAX_DURATION_S))
UPLOAD_TYPES = ["wav", "mp3", "ogg", "flac", "m4a", "webm", "opus", "mp4"]
#: One colour per emotion everywhere on the page (probabilities, timeline, shares); no emoji,
#: which a machine without an emoji font draws as boxes.
COLOURS = {"angry": "#d62728", "calm": "#17becf", "disgust": "#8c564b", "fear": "#9467bd",
           "happy": "#e6ab02", "neutral": "#7f7f7f", "sad": "#1f77b4", "surprise": "#ff7f0e"}


#: Columns of time the charts draw at most: about a screen's width, whatever the length.
SCREEN_COLUMNS = 1000
#: The floor of the spectrogram's dB scale (power 1e-10): digital silence sits here.
FLOOR_DB = -100.0


@st.cache_resource(show_spinner="Loading the model…", max_entries=1)
def load_recognizer(path: str | None) -> EmotionRecognizer:
    """Loaded on first use and shared by every session; one model at a time (choosing another
    replaces it), so the app's memory does not grow with the models tried."""
    return EmotionRecognizer.load(path)


def model_panel(rec: EmotionRecognizer) -> None:
    cfg = rec.bundle.config
    metrics = cfg.get("metrics", {})
    st.sidebar.subheader("About this model")
    st.sidebar.markdown(
        f"**{cfg['arch']['name']}** ({rec.bundle.frontend} front end)  \n"
        f"Classes: {', '.join(cfg['labels'])}"
    )
    data = cfg.get("data", {})
    if data.get("corpora"):
        st.sidebar.markdown("**Training data:** " + ", ".join(
            f"{c} ({v['files']} clips, {v['speakers']} speakers)" for c, v in data["corpora"].items()))
    cv = metrics.get("cross_validation")
    test = metrics.get("test", {}).get("overall")
    if cv:
        overall = cv["summary"]["overall"]
        per_corpus = ", ".join(
            f"{c} {100 * v['wa']['mean']:.0f}%" for c, v in cv["summary"].items()
            if c not in ("overall", "calibration"))
        st.sidebar.markdown(
            f"**Measured on unseen speakers** ({cv['folds']}-fold cross-validation grouped by "
            f"speaker, seed {cv['seed']}): accuracy {100 * overall['wa']['mean']:.1f}% "
            f"± {100 * overall['wa']['std']:.1f}, unweighted accuracy "
            f"{100 * overall['ua']['mean']:.1f}%; per corpus {per_corpus}."
        )
    elif test:
        protocol = metrics.get("protocol", "?")
        st.sidebar.markdown(
            f"**Measured on held-out data** ({'unseen speakers' if protocol == 'speaker' else protocol}"
            f" split, seed {metrics.get('seed')}): accuracy {100 * test['wa']:.1f}%, "
            f"unweighted accuracy {100 * test['ua']:.1f}%, {test['n']} clips."
        )
    trained_on = describe_corpora(data.get("corpora", {}))
    st.sidebar.caption(
        f"Limits: trained on {styles_phrase(trained_on['styles'])} in "
        f"{' and '.join(trained_on['languages'])}; expect lower accuracy on spontaneous, noisy "
        "or other-language speech. A confidence is the model's estimate, not a fact about a "
        "person — do not use it to make decisions about people."
        + (" Non-commercial use only (training data licences)." if trained_on["non_commercial"]
           else "")
    )


def probability_chart(probabilities: dict[str, float]):
    import plotly.graph_objects as go

    labels = list(EMOTIONS)
    values = [100 * probabilities[k] for k in labels]
    fig = go.Figure(go.Bar(x=values, y=labels, orientation="h", marker_color=[COLOURS[k] for k in labels],
                           text=[f"{v:.1f}%" for v in values], textposition="auto"))
    fig.update_layout(title="Emotion probabilities", xaxis_title="probability (%)",
                      xaxis=dict(range=[0, 101], tickvals=list(range(0, 101, 20))), height=320,
                      yaxis=dict(categoryorder="array", categoryarray=labels[::-1]),
                      margin=dict(l=70, r=10, t=40, b=45))
    return fig


def _time_axis(fig, duration_s: float) -> None:
    """The same time axis and margins on every chart over time, so that they line up."""
    fig.update_xaxes(range=[0, max(duration_s, 1e-3)], title="time (s)")
    fig.update_layout(margin=dict(l=70, r=90, t=40, b=45))


def envelope(samples: np.ndarray, columns: int = SCREEN_COLUMNS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(column start index, min, max) per column: every peak survives, however long the input."""
    columns = max(1, min(columns, len(samples)))
    edges = np.linspace(0, len(samples), columns + 1).astype(int)
    lows = np.minimum.reduceat(samples, edges[:-1])
    highs = np.maximum.reduceat(samples, edges[:-1])
    return edges[:-1], lows, highs


def waveform_chart(samples: np.ndarray, sr: int):
    import plotly.graph_objects as go

    starts, lows, highs = envelope(samples)
    # Rounded: the chart's JSON is what the browser receives (4 digits are below a pixel).
    t, lows, highs = ((starts / sr).round(3).tolist(), lows.round(4).tolist(),
                      highs.round(4).tolist())
    fig = go.Figure([
        go.Scatter(x=t, y=highs, mode="lines", line=dict(width=0.8, color="#1f77b4"),
                   name="max", hoverinfo="skip", showlegend=False),
        go.Scatter(x=t, y=lows, mode="lines", line=dict(width=0.8, color="#1f77b4"), fill="tonexty",
                   fillcolor="rgba(31,119,180,0.6)", name="min", hoverinfo="skip", showlegend=False),
    ])
    fig.update_layout(title="Waveform (min and max per pixel column)",
                      yaxis_title="amplitude", height=250)
    _time_axis(fig, len(samples) / sr)
    return fig


def spectrogram_chart(samples: np.ndarray, rec: EmotionRecognizer):
    import plotly.graph_objects as go

    config = rec.feature_config
    mel, t = screen_spectrogram(samples, config)
    # 80 dB of range below the loudest bin, never above the floor's 80 dB: quieter sound and
    # digital silence are the colour scale's black floor, not a bright band.
    top = max(float(mel.max()) if mel.size else FLOOR_DB, FLOOR_DB + 80)
    magma = [[0.0, "#140e36"], [0.25, "#51127c"], [0.5, "#b73779"], [0.75, "#fc8961"],
             [1.0, "#fcfdbf"]]
    z = np.maximum(mel, top - 80).round().astype(int).tolist()  # whole dB: a colour step is ~1 dB
    fig = go.Figure(go.Heatmap(z=z, x=t.round(3).tolist(), colorscale=magma, zmin=top - 80,
                               zmax=top, colorbar=dict(title="dB", len=0.9)))
    fig.update_layout(title="Mel spectrogram", yaxis_title="mel band", height=300)
    _time_axis(fig, len(samples) / config.sample_rate)
    return fig


def screen_spectrogram(samples: np.ndarray, config, columns: int = SCREEN_COLUMNS // 2):
    """The log-mel spectrogram reduced to at most ``columns`` time columns (the loudest frame
    of each, so short sounds stay visible; 500 columns of 128 bands is finer than the chart's
    cells on a laptop screen), computed in pieces: the chart's data stays about 300 kB and the
    memory small at any length. Returns (dB (bands, columns), column times)."""
    hop, sr = config.hop_length, config.sample_rate
    frames = 1 + len(samples) // hop
    per = max(1, -(-frames // columns))  # frames per column
    piece = per * hop * 64  # whole columns per piece
    parts = []
    for start in range(0, len(samples), piece):
        mel = log_mel_spectrogram(samples[start : start + piece], config)[:, : per * 64]
        usable = mel.shape[1] // per * per
        if usable:
            parts.append(mel[:, :usable].reshape(mel.shape[0], -1, per).max(axis=2))
        if mel.shape[1] > usable:
            parts.append(mel[:, usable:].max(axis=1, keepdims=True))
    mel = np.concatenate(parts, axis=1) if parts else np.zeros((config.n_mels, 0), np.float32)
    return mel, (np.arange(mel.shape[1]) * per + per / 2) * hop / sr


#: Seconds of a long recording the timeline shows at once (a minute: one utterance of a
#: second is then about 1/60 of the chart's width, readable without hovering).
TIMELINE_WINDOW_S = 60.0


def timeline_chart(segments, duration_s: float):
    """One row: each analysed utterance as a bar in its emotion's colour; gaps are pauses."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for emotion in EMOTIONS:  # one trace per emotion, in the order of every other chart
        mine = [s for s in segments if s.emotion == emotion]
        if not mine:
            continue
        fig.add_trace(go.Bar(
            x=[s.end_s - s.start_s for s in mine], base=[s.start_s for s in mine],
            y=["speech"] * len(mine), orientation="h", marker_color=COLOURS[emotion],
            name=emotion, legendrank=EMOTIONS.index(emotion),
            customdata=[[s.start_s, s.end_s, 100 * s.confidence] for s in mine],
            hovertemplate=f"%{{customdata[0]:.1f}}-%{{customdata[1]:.1f}} s: {emotion} "
                          "(%{customdata[2]:.0f}%)<extra></extra>"))
    # The legend above the plot, clear of the time axis's title below it.
    fig.update_layout(title="Emotion of each utterance (gaps: no speech)", height=260,
                      barmode="overlay", yaxis=dict(showticklabels=False),
                      legend=dict(orientation="h", x=1, xanchor="right", y=1.02, yanchor="bottom"))
    _time_axis(fig, duration_s)
    if duration_s > TIMELINE_WINDOW_S:
        # A long recording's utterances would be a barcode at full width: show a minute, with
        # a slider below to move along the whole recording (and zoom by dragging its ends).
        fig.update_xaxes(range=[0, TIMELINE_WINDOW_S],
                         rangeslider=dict(visible=True, thickness=0.12, range=[0, duration_s]),
                         title="time (s) — drag the slider to move through the recording")
    fig.update_layout(margin=dict(l=70, r=90, t=70, b=45))
    return fig


def shares_chart(shares: dict[str, float]):
    import plotly.graph_objects as go

    labels = [k for k in EMOTIONS if shares.get(k)]
    fig = go.Figure(go.Bar(x=[100 * shares[k] for k in labels], y=labels, orientation="h",
                           marker_color=[COLOURS[k] for k in labels],
                           text=[f"{100 * shares[k]:.0f}%" for k in labels], textposition="auto",
                           textfont=dict(size=13)))
    fig.update_layout(title="Share of the speaking time per emotion", xaxis_title="% of speech",
                      xaxis=dict(range=[0, 101], tickvals=list(range(0, 101, 20))),
                      yaxis=dict(categoryorder="array", categoryarray=labels[::-1]),
                      height=max(200, 90 + 32 * len(labels)), uniformtext=dict(minsize=12),
                      margin=dict(l=70, r=10, t=40, b=45))
    return fig


def analyse(data: bytes, name: str, rec: EmotionRecognizer, player: bool = True) -> None:
    """Decode once, predict with a progress bar, and draw everything; bad input becomes a
    message, not a crash, and gets no audio player."""
    if len(data) > MAX_UPLOAD_MB * 1024 * 1024:
        st.error(f"{name} is {len(data) / 1e6:.1f} MB: larger than the limit of "
                 f"{MAX_UPLOAD_MB:g} MB. Cut it shorter or use `ser predict` on your machine.")
        return
    try:
        audio = decode(data, rec.feature_config.sample_rate, max_duration_s=MAX_DURATION_S)
    except AudioError as exc:
        st.error(f"Cannot analyse {name}: {exc}")
        return
    if player:
        st.audio(data)
    bar = st.progress(0.0, text="Analysing…")
    result = rec.predict(audio.samples, sample_rate=audio.sample_rate,
                         on_progress=lambda f: bar.progress(min(1.0, float(f)), text="Analysing…"))
    bar.empty()
    if result.emotion == NO_SPEECH:
        st.warning(f"No speech found in {name} ({result.duration_s:.1f} s): the voice activity "
                   "detector heard no voice, so there is no emotion to report.")
    elif len(result.segments) > 1:
        headline(result)
        st.plotly_chart(timeline_chart(result.segments, result.duration_s), width="stretch", theme=None)
        st.plotly_chart(shares_chart(result.emotion_shares), width="stretch", theme=None)
        with st.expander("Probabilities over the whole recording (weighted by utterance length)"):
            st.plotly_chart(probability_chart(result.probabilities), width="stretch", theme=None)
    else:
        col1, col2 = st.columns(2)
        col1.metric("Emotion", result.emotion + (" (uncertain)" if result.uncertain else ""))
        col2.metric("Confidence", f"{100 * result.confidence:.1f}%")
        if result.uncertain:
            st.info(f"Uncertain: {result.emotion} is the model's best guess, but at "
                    f"{100 * result.confidence:.0f}% confidence its guesses on unseen voices are "
                    "more often wrong than right.")
        st.plotly_chart(probability_chart(result.probabilities), width="stretch", theme=None)
    st.plotly_chart(waveform_chart(audio.samples, audio.sample_rate), width="stretch", theme=None)
    st.plotly_chart(spectrogram_chart(audio.samples, rec), width="stretch", theme=None)


def headline(result) -> None:
    """A recording's summary: one emotion when it has most of the speaking time, else mixed
    with the largest shares (never eight emotions averaged into one weak label)."""
    shares = sorted(((v, k) for k, v in result.emotion_shares.items() if v > 0), reverse=True)
    top = ", ".join(f"{k} {100 * v:.0f}%" for v, k in shares[:3])
    col1, col2, col3 = st.columns(3)
    col1.metric("Recording", result.summary)
    # Labelled with its emotion: a share of the speaking time, not a confidence.
    largest = shares[0][1] if shares else result.summary
    col2.metric(f"Speaking time that is {largest}", f"{100 * result.summary_share:.0f}%")
    col3.metric("Utterances", str(len(result.segments)))
    speech = f"{result.speech_s:.0f} s of speech in {result.duration_s:.0f} s"
    if result.adapted_utterances:
        speech += (f"; adapted to the speaker: the emotions of its {result.adapted_utterances} "
                   "utterances vary, so their average voice was set aside")
    if result.summary == MIXED:
        st.info(f"Mixed: no emotion holds {100 * DOMINANT_SHARE:.0f}% of the speaking time "
                f"(largest: {top}; {speech}). See each utterance in the timeline.")
    else:
        st.caption(f"Speaking time: {top} ({speech}).")


def live_panel() -> None:
    """Live analysis runs on the HTTP API's WebSocket (Streamlit cannot push results while the
    microphone records): `ser app` starts `ser serve` beside it, and this tab links to its page."""
    port = os.environ.get("SER_LIVE_PORT")
    st.write("Speak and watch each utterance appear, coloured by its emotion, as it ends — "
             "with the running shares and a summary when you stop.")
    if not port:
        st.info("Live analysis needs the HTTP API: start `ser serve` and open "
                "http://127.0.0.1:8000/live (or start the app with `ser app`, which runs both).")
        return
    from urllib.parse import urlsplit

    host = urlsplit(getattr(st.context, "url", None) or "http://localhost").hostname or "localhost"
    st.link_button("Open the live page", f"http://{host}:{port}/live", type="primary")
    st.caption("It opens in a new tab, which asks for the microphone. The audio goes to this "
               "machine only.")


def main() -> None:
    st.set_page_config(page_title="ser - speech emotion recognition")
    st.title("Speech emotion recognition")
    st.write("Upload speech or record it; the model tells which of eight emotions it carries.")
    names = list(SHIPPED_MODELS)
    start = os.environ.get("SER_MODEL") or "default"
    if start not in names:  # a bundle folder given to `ser app --model`
        names.insert(0, start)
    choice = st.sidebar.selectbox("Model", names, index=names.index(start),
                                  help="; ".join(f"{k}: {v}" for k, v in SHIPPED_MODELS.items()))
    try:
        rec = load_recognizer(choice)
    except Exception as exc:  # a broken bundle should say so on the page
        st.error(f"The model could not be loaded: {exc}")
        return
    model_panel(rec)
    upload_tab, record_tab, live_tab, example_tab = st.tabs(
        ["Upload a file", "Record", "Live", "Example"])
    with upload_tab:
        upload = st.file_uploader("Audio file", type=UPLOAD_TYPES,
                                  help=f"WAV, MP3, OGG, FLAC, M4A… up to {MAX_UPLOAD_MB:g} MB")
        if upload is not None:
            analyse(upload.getvalue(), upload.name, rec)
    with record_tab:
        recording = st.audio_input("Record from the microphone")
        if recording is not None:
            analyse(recording.getvalue(), "the recording", rec, player=False)
    with live_tab:
        live_panel()
    with example_tab:
        examples = sorted(p.name for p in files("ser").joinpath("examples").iterdir()
                          if p.name.endswith(".wav"))
        choice = st.selectbox("Bundled example (synthetic speech)", examples)
        if st.button("Analyse the example"):
            analyse(files("ser").joinpath("examples", choice).read_bytes(), choice, rec)


if __name__ == "__main__":
    main()
