"""MODEL_CARD.md text, generated from what the model was actually trained on: its corpora,
their languages and licences (``ser.corpora.CORPUS_INFO``), its input shape and its measurements."""

from __future__ import annotations

import json

from ser.corpora import describe_corpora, styles_phrase
from ser.training.evaluate import summary_table


def _input_line(frontend: str, input_shape: list[int], encoder: dict | None = None,
                feature_config: dict | None = None) -> str:
    fc = feature_config or {}
    window = f"{fc.get('window_s', 3.0):g}-s windows at 16 kHz"
    if frontend == "handcrafted":
        frames, feats = input_shape
        return (f"Input: {window}, {frames} frames x {feats} features (MFCC, delta, "
                "chroma, log-mel, spectral contrast, tonnetz), standardised with the scaler in "
                "config.json.")
    encoder = encoder or {}
    if fc.get("anchor") == "whole":
        window = (f"whole utterances at 16 kHz (speech trimmed of silence, up to "
                  f"{fc.get('window_s', 3.0):g} s)")
    if encoder.get("runtime") == "onnx":
        states = encoder["states"]
        which = (f"the states after layer{'s' if len(states) > 1 else ''} "
                 f"{', '.join(map(str, states))} of 6 (float32, ONNX Runtime; the weight-less "
                 "graph is encoder.onnx, the weights come from the verified whisper packages)")
    else:
        which = (f"its final-layer states ({encoder.get('compute_type', 'int8')}, CTranslate2)")
    return (f"Input: {window} through the Whisper-base encoder (OpenAI, MIT licence): {which}, "
            f"each pooled to mean and standard deviation ({input_shape[-1]:,} numbers in all), "
            "standardised with the scaler in config.json.")


def _corpus_weights(training: dict) -> str:
    power = training.get("balance_corpora") or 0
    return f", each clip also weighted by its corpus's size^-{power:g}" if power else ""


def _protocol_lines(metrics: dict, training: dict) -> list[str]:
    split = training["split"]
    if metrics["protocol"] == "speaker" and not split["test"]["speakers"]:
        how = ("Every speaker is used for training except the validation speakers; the accuracy "
               "below comes from cross-validation with the same settings.")
    elif metrics["protocol"] == "speaker":
        how = "Whole speakers are held out: no test voice was heard in training or validation."
    else:
        how = ("Random stratified file-level split: the same voices appear in train and test, "
               "which inflates accuracy; reported for comparison with the reference only.")
    device = training.get("device", "cpu")
    if training.get("optimizer") == "logistic":
        fit = (f"Head: L2-regularised logistic regression solved to convergence (L-BFGS, "
               f"C = {training['l2_c']}, balanced class weights{_corpus_weights(training)}); "
               "validation speakers set the "
               f"calibration temperature; {training['train_seconds']} s.")
    else:
        fit = (f"Optimiser {training.get('optimizer', 'adamw')}, learning rate "
               f"{training.get('learning_rate')}, batch {training.get('batch_size')}; early "
               f"stopping on validation loss: best epoch {training['best_epoch']} of "
               f"{training['epochs_run']}; {training['train_seconds']} s on {device}.")
    return [f"Split: `{metrics['protocol']}` (seed {metrics['seed']}). " + how,
            f"Train speakers: {len(split['train']['speakers'])}, validation speakers (early "
            f"stopping, temperature): {len(split['val']['speakers'])}, test speakers: "
            f"{len(split['test']['speakers'])}.", fit + _augmentation(training), ""]


def _augmentation(training: dict) -> str:
    copies = training.get("augment_copies", 0)
    if not copies:
        return ""
    what = ("a random recording condition (noise, room, telephone, Opus/MP3, low level or a "
            "word-length excerpt; ser.training.augment)" if training.get("augment_kind") == "conditions"
            else "random noise, gain, pitch shift and time stretch")
    weight = training.get("augment_weight", 1.0)
    return (f" Each training clip also appears {'once' if copies == 1 else f'{copies} times'} under "
            f"{what}" + (f", at {weight:g} of a clip's weight" if weight != 1.0 else "") + ".")


def _limits_and_licence(data: dict) -> list[str]:
    corpora = describe_corpora(data["corpora"])
    classes = {c: set(v["classes"]) for c, v in data["corpora"].items()}
    rare = [label for label in ("calm", "surprise")
            if sum(label in v for v in classes.values()) <= 2]
    lines = ["## Limits", "",
             f"- Trained on {styles_phrase(corpora['styles'])} in "
             f"{' and '.join(corpora['languages'])} ({', '.join(data['corpora'])}); spontaneous "
             "speech, other languages, children, noisy or far-field audio will score lower."]
    for label in rare:
        have = [c for c, v in classes.items() if label in v]
        lines.append(f"- *{label}* is learned from {', '.join(have) or 'no corpus'} only: check "
                     "per-corpus confusion matrices before trusting it.")
    lines += ["- Emotion is inferred from the voice only; a confidence is a model's estimate, not "
              "a fact about a person. Do not use for decisions about individuals.", "",
              "## Licence", "",
              "The code is MIT. The training data's licences bind this model: " + "; ".join(
                  f"{c}: {lic}" for c, lic in corpora["licences"].items()) + "."]
    if corpora["non_commercial"]:
        lines.append("**Use this model for non-commercial research only.**")
    return lines + [""]


def model_card(
    arch: dict, data: dict, metrics: dict, training: dict, temperature: float,
    frontend: str = "handcrafted", input_shape: list[int] | None = None,
    encoder: dict | None = None, feature_config: dict | None = None,
) -> str:
    corpora = ", ".join(f"{c} ({v['files']} clips, {v['speakers']} speakers)"
                        for c, v in data["corpora"].items())
    lines = [
        "# Model card: ser emotion model", "",
        f"Architecture: `{arch['name']}` — {json.dumps(arch)}; "
        f"{training['parameters']:,} parameters.",
        _input_line(frontend, input_shape or ([151, 233] if frontend == "handcrafted" else [1024]),
                    encoder, feature_config),
        "Output: probabilities over angry, calm, disgust, fear, happy, neutral, sad, surprise "
        f"(softmax with calibrated temperature {temperature:.3f}).", "",
        "## Training data", "", f"{data['files']} clips: {corpora}.",
        f"Unusable clips skipped: {len(data['unusable_clips'])} "
        f"({', '.join(n for n, _ in data['unusable_clips'][:5])}).", "",
        "## Protocol", "", *_protocol_lines(metrics, training),
    ]
    if "cross_validation" in metrics:
        cv = metrics["cross_validation"]
        lines += ["## Results: cross-validation grouped by speaker", "",
                  "Same settings as this model, each fold's speakers unseen in its training "
                  "(mean ± std over folds):", "", cv["table"], ""]
    if "test" in metrics:
        lines += ["## Results on held-out test data", "", summary_table(metrics["test"]), "",
                  f"Expected calibration error on test: {metrics['test_uncalibrated_ece']:.3f} "
                  f"before temperature scaling, {metrics['test']['overall']['ece']:.3f} after.", ""]
    return "\n".join(lines + _limits_and_licence(data))


def card_from_config(config: dict) -> str:
    """Regenerate a bundle's card from its config.json (e.g. after the card text changed)."""
    frontend = config.get("frontend", "handcrafted")
    return model_card(config["arch"], config["data"], config["metrics"], config["training"],
                      float(config.get("temperature", 1.0)), frontend,
                      input_shape=list(config["input"]["shape"][1:]),
                      encoder=config.get("encoder"), feature_config=config.get("feature_config"))
