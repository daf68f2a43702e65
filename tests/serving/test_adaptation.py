"""Session adaptation: a recording's own utterances, or files given one speaker, answered with
their mean input removed by a head trained that way — only when their plain answers are spread."""

from __future__ import annotations

import numpy as np
import pytest

from ser.common import softmax
from ser.serving.classifier import Scaler, Session, SessionAdaptation


def _adaptation(d=6, labels=3, below_share=0.5, shrink=2.0, seed=0):
    rng = np.random.default_rng(seed)
    config = {"weights": rng.standard_normal((labels, d)).tolist(), "bias": rng.standard_normal(labels).tolist(),
              "temperature": 1.5, "shrink": shrink, "below_share": below_share}
    scaler = Scaler(rng.standard_normal(d).astype(np.float32), rng.uniform(0.5, 2, d).astype(np.float32))
    return SessionAdaptation(config, scaler), config, scaler


def test_adapted_probabilities_remove_the_shrunk_session_mean():
    adaptation, config, scaler = _adaptation()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    session = adaptation.session(x, softmax(rng.standard_normal((5, 3))))
    z = (x - scaler.mean) / scaler.std
    offset = z.mean(0) * 5 / (5 + config["shrink"])  # n / (n + shrink) of the mean
    expected = softmax((z - offset) @ np.asarray(config["weights"]).T + config["bias"], 1.5)
    np.testing.assert_allclose(adaptation.probabilities(session), expected, atol=1e-5)
    # Sessions join into the session of all their units.
    halves = Session.joined([adaptation.session(x[:2], session.plain[:2]),
                             adaptation.session(x[2:], session.plain[2:])])
    np.testing.assert_allclose(adaptation.probabilities(halves), expected, atol=1e-5)


def test_only_sessions_with_spread_plain_answers_are_adapted():
    adaptation, _, _ = _adaptation(below_share=0.5)
    x = np.zeros((4, 6), np.float32)

    def plain(*tops):
        return np.eye(3, dtype=np.float32)[list(tops)]

    assert adaptation.applies(adaptation.session(x[:3], plain(0, 1, 2)))  # top share 1/3
    assert not adaptation.applies(adaptation.session(x[:1], plain(0)))  # one utterance: never
    assert not adaptation.applies(adaptation.session(x, plain(0, 0, 0, 1)))  # one emotion holds
    assert not adaptation.applies(adaptation.session(x, plain(0, 0, 1, 2)))  # 0.5 is not under 0.5
    _, config, scaler = _adaptation(below_share=0.5)
    longer = SessionAdaptation({**config, "min_utterances": 4}, scaler)  # short sessions: never
    assert not longer.applies(longer.session(x[:3], plain(0, 1, 2)))
    assert not longer.applies(longer.session(x, plain(0, 1, 2, 2)))  # 4 utterances, top 0.5
    assert SessionAdaptation({**config, "below_share": 0.6, "min_utterances": 4}, scaler).applies(
        longer.session(x, plain(0, 1, 2, 2)))  # 4 utterances, top 0.5 under 0.6


@pytest.fixture(scope="module")
def recognizers():
    """The default model, and the same model without its session adaptation (plain)."""
    from ser import EmotionRecognizer

    adapted, plain = EmotionRecognizer.load("default"), EmotionRecognizer.load("default")
    assert adapted.adaptation is not None, "the default bundle ships its session adaptation"
    plain.adaptation = None
    return adapted, plain


def _clips(corpora, actor: int, emotions, statements=(1,)) -> list[str]:
    folder = corpora / "ravdess" / f"Actor_{actor:02d}"
    return [str(folder / f"03-01-{e:02d}-02-{s:02d}-01-{actor:02d}.flac") for s in statements for e in emotions]


def _recording(paths, seed=0):
    from ser.audio import decode

    rng = np.random.default_rng(seed)
    parts = []
    for p in paths:
        parts += [decode(p, 16_000).samples, np.zeros(int(rng.uniform(0.8, 1.5) * 16_000), np.float32)]
    return np.concatenate(parts)


def test_a_recording_with_spread_emotions_is_adapted_over_its_utterances(recognizers, corpora):
    adapted, plain = recognizers
    y = _recording(_clips(corpora, 1, range(2, 9)) + _clips(corpora, 2, range(2, 9)))
    before, after = plain.predict(y, sample_rate=16_000), adapted.predict(y, sample_rate=16_000)
    n = len(before.segments)
    tops = np.bincount([adapted.labels.index(s.emotion) for s in before.segments])
    assert n >= 10 and tops.max() / n < adapted.adaptation.below_share  # spread plain answers
    row = after.to_dict()
    assert row["adapted"] is True and row["adapted_utterances"] == n
    assert [(s.start_s, s.end_s) for s in after.segments] == [(s.start_s, s.end_s) for s in before.segments]
    assert before.to_dict()["adapted"] is False and before.to_dict()["adapted_utterances"] == 0
    moved = max(abs(a.probabilities[k] - b.probabilities[k])
                for a, b in zip(after.segments, before.segments) for k in a.probabilities)
    assert moved > 0.05
    assert sum(after.probabilities.values()) == pytest.approx(1.0, abs=1e-4)


def test_a_speaker_who_keeps_one_emotion_is_answered_as_the_plain_model_does(recognizers, corpora):
    """Angry clips of one actor: the plain answers are mostly angry, so nothing is adapted."""
    adapted, plain = recognizers
    folder = corpora / "ravdess" / "Actor_03"
    y = _recording(sorted(str(p) for p in folder.glob("03-01-05-*.flac")))
    before, after = plain.predict(y, sample_rate=16_000), adapted.predict(y, sample_rate=16_000)
    assert after.summary == before.summary == "angry"
    assert after.to_dict()["adapted"] is False
    assert after.to_dict() == before.to_dict()


def test_files_of_one_speaker_are_one_session_and_keep_their_order(recognizers, corpora, tmp_path):
    adapted, plain = recognizers
    grouped = _clips(corpora, 4, range(2, 9), statements=(1, 2))  # 14: sessions from 10 adapt
    alone = _clips(corpora, 5, (3, 5))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    sources = [grouped[0], alone[0], *grouped[1:4], str(bad), *grouped[4:], alone[1]]
    speakers = ["a", None, "a", "a", "a", None, *["a"] * len(grouped[4:]), None]
    results = list(adapted.predict_many(sources, speakers=speakers, workers=1))
    assert len(results) == len(sources)
    from ser.audio import AudioError

    assert isinstance(results[5], AudioError)
    for i in (1, len(sources) - 1):  # answered alone: a clip is never adapted
        assert results[i].to_dict()["adapted"] is False
        assert results[i].to_dict()["probabilities"] == plain.predict(sources[i]).to_dict()["probabilities"]
    together = adapted.adapt_speakers([adapted.predict(p) for p in grouped])
    mine = [r for r, s in zip(results, speakers) if s == "a" and not isinstance(r, AudioError)]
    assert [r.path for r in mine] == grouped
    assert all(r.adapted_utterances == len(grouped) for r in mine)  # spread answers
    for r, t in zip(mine, together):
        for k, v in r.probabilities.items():
            assert v == pytest.approx(t.probabilities[k], abs=1e-5)
    with pytest.raises(ValueError, match="speakers for"):
        list(adapted.predict_many(sources, speakers=speakers[:3]))
