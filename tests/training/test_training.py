"""End to end on a tiny generated dataset: train, evaluate, cv, tune, bundle checks."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ser import EMOTIONS
from ser.serving.bundle import BundleError, read_bundle
from ser.interfaces.cli import main
from ser.serving.classifier import Scaler
from ser.training.datasets import load_records
from ser.training.splits import labels_of, random_split, speaker_folds, speaker_split
from ser.training.loop import class_weights, fit_temperature

TINY = '{"arch": {"conv_channels": 8, "lstm_units": 8, "dense_units": 16}}'


def test_speaker_split_never_shares_a_voice(tiny_corpus):
    records, _ = load_records([tiny_corpus])
    split = speaker_split(records, val_fraction=0.25, test_fraction=0.25, seed=1)
    speakers = [{records[i].speaker for i in getattr(split, part)} for part in ("train", "val", "test")]
    assert all(speakers) and not (speakers[0] & speakers[1] or speakers[0] & speakers[2] or speakers[1] & speakers[2])
    assert len(split.train) + len(split.val) + len(split.test) == len(records)
    folds = speaker_folds(records, 2, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(records)))
    assert not ({records[i].speaker for i in folds[0]} & {records[i].speaker for i in folds[1]})


def test_random_split_is_stratified(tiny_corpus):
    records, _ = load_records([tiny_corpus])
    split = random_split(records, seed=0)
    y = labels_of(records)
    assert set(y[split.test]) == set(y)
    assert not set(split.train) & set(split.test)


def test_scaler_weights_and_temperature():
    x = np.random.default_rng(0).normal(3.0, 2.0, (10, 5, 4)).astype(np.float32)
    s = Scaler.fit(x)
    z = s.transform(x).reshape(-1, 4)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-4)
    assert Scaler.from_dict(json.loads(json.dumps(s.to_dict()))).mean.tolist() == s.mean.tolist()
    w = class_weights(np.array([0, 0, 0, 1]))
    assert w[1] == pytest.approx(3 * w[0]) and w[2] == 0
    # Over-confident logits on a noisy task get a temperature above 1.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 8, 2000)
    logits = rng.normal(0, 1, (2000, 8))
    logits[np.arange(2000), y] += 1.0
    assert fit_temperature(logits * 5, y) > 2.0


def test_train_evaluate_and_bundle(tiny_bundle, tiny_corpus, tmp_path, capsys):
    run, bundle = tiny_bundle
    for name in ("history.json", "training_history.png", "summary.json",
                 "test_report/report.json", "test_report/confusion_matrix.png"):
        assert (run / name).is_file(), name
    info = read_bundle(bundle)
    assert info.labels == list(EMOTIONS)
    assert info.config["arch"]["name"] == "conv_attention"
    assert len(info.config["scaler"]["mean"]) == 233
    assert info.config["metrics"]["protocol"] == "speaker"
    assert "non-commercial" in (bundle / "MODEL_CARD.md").read_text()
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == len(history["val_loss"]) >= 1

    out = tmp_path / "eval"
    assert main(["evaluate", str(bundle), str(tiny_corpus), "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["overall"]["n"] == 64 and report["not_analysed"] == {"no_speech": 0, "errors": 0}
    assert set(report["per_corpus"]) == {"ravdess"}
    assert np.asarray(report["overall"]["confusion"]).sum() == 64
    # the bundle's own training/validation voices and the held-out one, reported apart
    parts = report["speakers"]
    assert parts["speakers the model was trained on"]["overall"]["n"] == 48
    assert parts["speakers the model never heard"]["overall"]["n"] == 16
    assert (out / "confusion_matrix_ravdess.png").is_file()


def test_bundle_tampering_is_detected(tiny_bundle, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle[1], copy)
    with open(copy / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="sha256"):
        read_bundle(copy)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["bundle_format"] = 99
    (copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="format"):
        read_bundle(copy)
    with pytest.raises(BundleError, match="not found"):
        read_bundle(tmp_path / "nothing")


def test_random_protocol_and_cv(tiny_corpus, tmp_path, capsys):
    params = tmp_path / "p.json"
    params.write_text(TINY)
    assert main(["train", str(tiny_corpus), "--out", str(tmp_path / "r"), "--protocol", "random",
                 "--epochs", "1", "--params", str(params), "--quiet",
                 "--cache-dir", str(tmp_path / "c")]) == 0
    assert read_bundle(tmp_path / "r" / "bundle").config["metrics"]["protocol"] == "random"
    assert main(["cv", str(tiny_corpus), "--out", str(tmp_path / "cv"), "--folds", "2",
                 "--epochs", "1", "--params", str(params), "--quiet",
                 "--cache-dir", str(tmp_path / "c")]) == 0
    cv = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert len(cv["folds"]) == 2
    assert sum(f["test"]["overall"]["n"] for f in cv["folds"]) == 64  # every clip tested once
    assert np.asarray(cv["confusion"]).sum() == 64 and (tmp_path / "cv" / "confusion_matrix.png").is_file()
    assert cv["summary"]["overall"]["wa"]["mean"] == pytest.approx(
        np.mean([f["test"]["overall"]["wa"] for f in cv["folds"]]))
    assert "2-fold cross-validation grouped by speaker" in capsys.readouterr().out


def test_cv_scores_held_out_clips_under_recording_conditions(tiny_corpus, tmp_path, capsys):
    """``--test-conditions``: every clip is tested once more under its benchmark condition;
    ``--augment-kind conditions`` trains on condition copies (other draws than the test's)."""
    from ser.training.augment import BENCHMARK_CONDITIONS

    params = tmp_path / "p.json"
    params.write_text(TINY)
    assert main(["cv", str(tiny_corpus), "--out", str(tmp_path / "cv"), "--folds", "2",
                 "--epochs", "1", "--params", str(params), "--quiet", "--test-conditions",
                 "--augment", "1", "--augment-kind", "conditions",
                 "--cache-dir", str(tmp_path / "c")]) == 0
    cv = json.loads((tmp_path / "cv" / "cv.json").read_text())
    conditions = cv["conditions"]
    assert conditions["all"]["n"] == 64
    assert set(conditions) - {"all"} <= set(BENCHMARK_CONDITIONS)
    assert sum(m["n"] for name, m in conditions.items() if name != "all") == 64
    clean = np.mean([f["test"]["overall"]["wa"] for f in cv["folds"]])
    assert conditions["all"]["wa_clean"] == pytest.approx(clean, abs=0.05)  # pooled vs fold mean
    assert 0 <= conditions["all"]["refused"] < 0.5
    assert "under recording conditions" in capsys.readouterr().out
    cached = {p.parent.parent.name for p in (tmp_path / "c").rglob("*.npy")}
    assert len(cached) == 3  # clean, the training copies and the held-out copies: three keys


def test_tune_writes_best_params(tiny_corpus, tmp_path):
    assert main(["tune", str(tiny_corpus), "--out", str(tmp_path), "--trials", "2",
                 "--epochs", "1", "--quiet", "--cache-dir", str(tmp_path / "c")]) == 0
    best = json.loads((tmp_path / "best_params.json").read_text())
    assert best["arch"]["name"] in ("reference_lstm", "conv_attention")
    assert best["trials"] == 2 and "learning_rate" in best
    assert len(json.loads((tmp_path / "trials.json").read_text())) == 2


def test_onnx_matches_pytorch_on_other_batch_sizes(tiny_bundle):
    import onnxruntime as ort
    import torch

    from ser.training.export import load_torch_model

    info = read_bundle(tiny_bundle[1])
    model = load_torch_model(info)
    session = ort.InferenceSession(str(info.onnx_path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        x = np.random.default_rng(batch).normal(size=(batch, 151, 233)).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(session.run(None, {"features": x})[0], expected, atol=1e-4)


def test_logistic_head_on_pooled_vectors():
    import torch

    from ser.training.loop import TrainConfig, fit

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 16))
    y = np.repeat([0, 4, 6], 60)  # three of the eight classes present
    x = (centres[np.searchsorted([0, 4, 6], y)] + rng.normal(0, 1, (180, 16))).astype(np.float32)
    config = TrainConfig(arch={"name": "embedding_mlp"}, optimizer="logistic", l2_c=1.0,
                         frontend="whisper-base")
    result = fit(x[::2], y[::2], x[1::2], y[1::2], config, progress=False)
    with torch.no_grad():
        probs = torch.softmax(result.model(torch.from_numpy(x[1::2])), 1).numpy()
    assert (probs.argmax(1) == y[1::2]).mean() > 0.95
    assert probs[:, [1, 2, 3, 5, 7]].max() < 1e-6  # classes never seen get no probability
    assert result.history["val_accuracy"][0] > 0.95
    with pytest.raises(ValueError, match="embedding_mlp"):
        fit(x[:, None, :], y, x[:, None, :], y, TrainConfig(optimizer="logistic"), progress=False)


def _sequence_task(n: int = 96, frames: int = 12, feats: int = 6):
    """Frame sequences whose class is written in the mean of one feature: learnable in epochs."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), n // 4)
    x = rng.normal(0, 1, (n, frames, feats)).astype(np.float32)
    x[:, :, 0] += 2.5 * y[:, None]
    return x, y


def test_reference_lstm_learns_and_resumes_exactly(tmp_path):
    """A run stopped after 5 epochs and resumed to 12 ends with the same weights and history as
    a run of 12 epochs straight through (checkpoints hold weights, optimiser and random state)."""
    from ser.training.loop import TrainConfig, fit

    x, y = _sequence_task()
    arch = {"name": "reference_lstm", "units": [16, 16, 8], "dense_units": 16,
            "lstm_dropout": 0.1, "dense_dropout": 0.1}

    def config(epochs):
        return TrainConfig(arch=arch, max_epochs=epochs, patience=50, batch_size=16, threads=1,
                           optimizer="adam", label_smoothing=0.0, device="cpu", seed=3,
                           learning_rate=3e-2, mask_features=False)

    straight = fit(x[::2], y[::2], x[1::2], y[1::2], config(12), progress=False)
    fit(x[::2], y[::2], x[1::2], y[1::2], config(5), progress=False, checkpoint_dir=tmp_path)
    resumed = fit(x[::2], y[::2], x[1::2], y[1::2], config(12), progress=False,
                  checkpoint_dir=tmp_path, resume=True)
    assert len(resumed.history["loss"]) == 12
    np.testing.assert_allclose(resumed.history["val_loss"], straight.history["val_loss"], rtol=1e-5)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    assert max(straight.history["val_accuracy"]) > 0.6  # four classes: chance is 0.25
    with pytest.raises(ValueError, match="other settings"):
        fit(x[::2], y[::2], x[1::2], y[1::2], TrainConfig(**{**config(12).to_dict(), "seed": 4}),
            progress=False, checkpoint_dir=tmp_path, resume=True)


def test_speaker_folds_refuse_more_folds_than_speakers(tiny_corpus):
    records, _ = load_records([tiny_corpus])  # 4 speakers
    with pytest.raises(ValueError, match="4 speakers"):
        speaker_folds(records, 5)


def test_feature_masks_are_bounded():
    from ser.training.augment import mask_features

    rng = np.random.default_rng(0)
    x = np.ones((64, 30, 20), np.float32)
    out = mask_features(x, rng, max_time=5, max_freq=4)
    assert out.dtype == np.float32 and out.shape == x.shape
    zero_frames = (out == 0).all(axis=2).sum(axis=1)  # whole frames masked per clip
    zero_feats = (out == 0).all(axis=1).sum(axis=1)
    assert zero_frames.max() <= 5 and zero_feats.max() <= 4
    assert zero_frames.min() == 0 and zero_frames.max() > 0  # lengths drawn from 0..max
    assert ((out == 0) | (out == 1)).all()


def test_two_speaker_corpus_gives_no_validation_speaker():
    """TESS has two voices: both train, so validation is not one voice nothing resembles."""
    from ser.training.datasets import Record

    records = [Record(path=f"{c}{s}{i}.wav", corpus=c, language="en", speaker=f"{c}{s}",
                      gender=None, label_original="angry", label="angry")
               for c, n in (("tess", 2), ("ravdess", 6)) for s in range(n) for i in range(3)]
    split = speaker_split(records, val_fraction=0.2, test_fraction=0.0, seed=0)
    val_corpora = {records[i].corpus for i in split.val}
    train_speakers = {records[i].speaker for i in split.train}
    assert val_corpora == {"ravdess"} and {"tess0", "tess1"} <= train_speakers


def test_logistic_bundle_records_the_linear_net_it_holds(tmp_path):
    """The bundle's architecture is the net actually built: a logistic head is one linear
    layer (dense_units 0), so its safetensors reload into the recorded architecture."""
    import torch
    from safetensors.torch import load_file

    from ser.serving.bundle import read_bundle
    from ser.training.export import save_bundle
    from ser.frontends.features import FeatureConfig
    from ser.training.networks import build_model
    from ser.training.loop import TrainConfig, fit

    rng = np.random.default_rng(0)
    y = np.repeat([0, 3, 5], 40)
    x = (rng.normal(0, 1, (120, 16)) + y[:, None]).astype(np.float32)
    config = TrainConfig(arch={"name": "embedding_mlp", "dense_units": 128}, optimizer="logistic",
                         frontend="whisper-base")
    result = fit(x, y, x, y, config, progress=False)
    assert result.arch["dense_units"] == 0
    rebuilt = build_model(result.arch, 16, len(EMOTIONS))
    rebuilt.load_state_dict(result.model.state_dict())  # the same shapes
    info = save_bundle(result.model, tmp_path / "b", feature_config=FeatureConfig(),
                       scaler={"mean": [0.0] * 16, "std": [1.0] * 16}, arch=result.arch,
                       temperature=1.0, metrics={}, data={}, training={}, card="",
                       frontend="whisper-base", input_shape=[16], encoder=None)
    bundle = read_bundle(info.root)
    assert bundle.config["arch"]["dense_units"] == 0
    weights = load_file(str(info.root / "weights.safetensors"))
    build_model(bundle.config["arch"], 16, len(EMOTIONS)).load_state_dict(weights)
    assert torch.is_tensor(next(iter(weights.values())))


@pytest.mark.parametrize("argv,message", [
    (["--arch", "embedding_mlp"], "handcrafted front end needs --arch reference_lstm or conv_attention"),
    (["--frontend", "whisper-base", "--arch", "conv_attention"], "needs --arch embedding_mlp"),
    (["--optimizer", "logistic"], "needs the embedding_mlp head"),
    (["--batch-size", "0"], "at least 1"),
    (["--augment", "1", "--augment-weight", "0.5"], "weighing augmented copies is implemented for the logistic head only"),
    (["--augment-kind", "conditions", "--augment", "1", "--augment-weight", "0", "--frontend", "whisper-base",
      "--optimizer", "logistic"], "weight must be positive"),
])
def test_settings_that_cannot_work_are_refused_before_any_work(tiny_corpus, tmp_path, capsys, argv, message):
    assert main(["train", str(tiny_corpus), "--out", str(tmp_path / "r"), "--quiet", *argv]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before reading data or writing anything


def test_params_never_silently_override_flags(tiny_corpus, tmp_path, capsys):
    params = tmp_path / "p.json"
    params.write_text('{"arch": {"name": "conv_attention"}, "learning_rate": 0.01}')
    assert main(["train", str(tiny_corpus), "--out", str(tmp_path / "r"), "--params", str(params),
                 "--lr", "0.001", "--quiet"]) == 1
    assert "drop --lr" in capsys.readouterr().err


def test_a_folder_with_one_sub_folder_per_emotion_trains(tmp_path):
    """README's "my_corpus/angry/x.wav" layout is reachable from `ser train`."""
    from ser.training.datasets import load_records

    import soundfile as sf

    from ..conftest import speech

    for label in ("angry", "sad"):
        (tmp_path / "mine" / label).mkdir(parents=True)
        for i in range(3):
            sf.write(tmp_path / "mine" / label / f"{i}.wav", speech(0.9 + 0.1 * i), 16_000)
    records, _ = load_records([tmp_path / "mine"])
    assert sorted({r.label for r in records}) == ["angry", "sad"] and len(records) == 6


def test_classifier_protocol_fit_predict_save_load(tmp_path):
    """fit → predict_proba (temperature applied once) → save → load, in PyTorch and in
    ONNX Runtime, give the same probabilities."""
    from ser.serving.bundle import read_bundle
    from ser.serving.classifier import OnnxClassifier
    from ser.training.classifier import TrainedClassifier
    from ser.frontends.features import FeatureConfig
    from ser.training.loop import TrainConfig

    x, y = _sequence_task(n=64, frames=10, feats=6)
    config = TrainConfig(arch={"name": "reference_lstm", "units": [8, 8, 8], "dense_units": 8,
                               "lstm_dropout": 0.0, "dense_dropout": 0.0},
                         max_epochs=3, batch_size=16, device="cpu", mask_features=False, seed=1)
    clf = TrainedClassifier.fit(x[::2], y[::2], x[1::2], y[1::2], config, progress=False)
    probs = clf.predict_proba(x)
    assert probs.shape == (64, len(EMOTIONS)) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert clf.temperature > 0 and clf.arch["units"] == [8, 8, 8] and clf.best_epoch >= 1
    info = clf.save(tmp_path / "b", feature_config=FeatureConfig(), frontend="handcrafted",
                    input_shape=[10, 6], metrics={}, data={}, training={}, card="")
    again = TrainedClassifier.load(info.root)
    np.testing.assert_allclose(again.predict_proba(x), probs, atol=1e-5)
    np.testing.assert_allclose(OnnxClassifier(read_bundle(info.root)).predict_proba(x), probs, atol=1e-4)


def test_end_to_end_training_learns_the_tiny_task(tiny_corpus, tmp_path):
    """The one real training run: `ser train` on the tiny corpus (its emotions differ in speed,
    pitch and loudness) must do far better than chance (1/8) on its held-out speaker."""
    params = tmp_path / "p.json"
    params.write_text('{"arch": {"name": "conv_attention", "conv_channels": 16, "lstm_units": 16, '
                      '"dense_units": 32}, "learning_rate": 0.003}')
    assert main(["train", str(tiny_corpus), "--out", str(tmp_path / "r"), "--epochs", "40",
                 "--patience", "100", "--no-mask", "--params", str(params), "--quiet",
                 "--test-fraction", "0.25", "--cache-dir", str(tmp_path / "c")]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    history = json.loads((tmp_path / "r" / "history.json").read_text())
    assert max(history["accuracy"]) > 0.5
    assert summary["metrics"]["test"]["overall"]["wa"] > 0.4


def test_corpus_weights_give_every_corpus_the_same_total():
    from ser.training.pipeline import corpus_weights

    w = corpus_weights(["crema-d"] * 6 + ["emovo"] * 2 + ["ravdess"] * 4)
    totals = {c: w[[i for i, x in enumerate(["crema-d"] * 6 + ["emovo"] * 2 + ["ravdess"] * 4) if x == c]].sum()
              for c in ("crema-d", "emovo", "ravdess")}
    assert len(set(round(v, 9) for v in totals.values())) == 1 and w.mean() == pytest.approx(1.0)


def test_a_corpus_keeps_its_folds_when_other_corpora_join():
    """Folds are drawn per corpus: adding a corpus to the data leaves every other corpus's
    speakers in the same folds, so lever rows compare the same folds."""
    from ser.training.datasets import Record

    def records(corpus, n):
        return [Record(f"{corpus}/{i}.wav", corpus, "en", f"{corpus}:{i}", None, "x", "angry")
                for i in range(n)]

    base = records("ravdess", 20) + records("emovo", 4)
    more = records("banglaser", 26) + base + records("nemo", 6)

    def fold_of(data):
        folds = speaker_folds(data, 5, seed=0)
        return {data[i].speaker: k for k, fold in enumerate(folds) for i in fold}

    before, after = fold_of(base), fold_of(more)
    assert {s: after[s] for s in before} == before
    assert fold_of(base) == before and len(set(before.values())) == 5


def test_augmented_copies_can_weigh_less(monkeypatch):
    """``augment_weight``: the copies' weights are that share of their clips' (times the corpus
    weights), scaled to mean 1."""
    from ser.training import pipeline
    from ser.training.datasets import Record
    from ser.training.splits import Split
    from ser.training.loop import TrainConfig

    records = [Record(f"/x/{i}.wav", "ravdess" if i < 6 else "emovo", "en", f"s{i % 4}", None,
                      EMOTIONS[i % 2], EMOTIONS[i % 2]) for i in range(8)]
    features = np.zeros((8, 4), np.float32)
    split = Split(np.arange(6), np.arange(6, 8), np.arange(0), "speaker", 0)
    monkeypatch.setattr(pipeline, "_augmented", lambda records, idx, *a, **k: (
        [features[idx]], [pipeline.labels_of([records[i] for i in idx])], [records[i].corpus for i in idx]))
    seen = {}

    class Stop(Exception):
        pass

    def fit(x, y, xv, yv, config, sample_weight=None, **kwargs):
        seen["w"] = sample_weight
        raise Stop

    monkeypatch.setattr(pipeline.TrainedClassifier, "fit", staticmethod(fit))
    config = TrainConfig(arch={"name": "embedding_mlp", "dense_units": 0}, optimizer="logistic",
                         frontend="whisper-base", augment_copies=1, augment_weight=0.25)
    with pytest.raises(Stop):
        pipeline.run_experiment(records, features, split, config, None, progress=False)
    w = seen["w"]
    assert len(w) == 12 and w.mean() == pytest.approx(1.0)
    assert np.allclose(w[6:], 0.25 * w[:6])
