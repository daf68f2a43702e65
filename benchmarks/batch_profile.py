"""Where a clip's time goes on the batch path, stage by stage, and what an int8 encoder would
change. Prints a table per stage (ms per clip) next to the machine baseline.

    python benchmarks/batch_profile.py --clips 100            # RAVDESS clips, default model
    python benchmarks/batch_profile.py --clips 40 --int8      # + dynamic int8 encoder probe

One process, one thread for every stage (what each of the local engine's workers uses). The
int8 probe quantises the encoder's MatMul weights with ONNX Runtime (needs the train extra's
``onnx``) and reports its time and the pooled states' cosine to float32; it is a measurement,
not the shipped path (shipping it needs speaker-grouped CV within 0.5 point).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import CORPORA, machine_baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--corpus", default=str(CORPORA / "ravdess"))
    parser.add_argument("--int8", action="store_true", help="also time a dynamic int8 encoder")
    args = parser.parse_args()

    from ser.audio import decode
    from ser.frontends.windows import analysis_units
    from ser.serving.inference import EmotionRecognizer, _windows

    files = sorted(p for p in Path(args.corpus).rglob("*") if p.suffix in (".flac", ".wav", ".ogg"))
    files = files[:: max(1, len(files) // args.clips)][: args.clips]
    print(machine_baseline())
    rec = EmotionRecognizer.load("default", threads=1)
    config = rec.feature_config
    stages = {"decode + resample": 0.0, "speech detector + placement": 0.0, "encoder": 0.0,
              "head": 0.0}
    windows_all = []
    started = time.perf_counter()
    for f in files:
        t0 = time.perf_counter()
        audio = decode(str(f), config.sample_rate)
        t1 = time.perf_counter()
        units = analysis_units(audio.samples, config)
        windows = _windows(units, config.window_samples)
        t2 = time.perf_counter()
        x = rec.frontend.window_inputs(windows, config, rec._encoder) if len(windows) else windows
        t3 = time.perf_counter()
        if len(windows):
            rec.probabilities(x)
        t4 = time.perf_counter()
        windows_all.append(windows)
        for name, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stages[name] += dt
    total = time.perf_counter() - started
    print(f"{len(files)} clips from {args.corpus}, default model, one thread: "
          f"{len(files) / total:.1f} clips/s")
    print("| stage | ms per clip | share |\n|---|---|---|")
    for name, seconds in stages.items():
        print(f"| {name} | {1000 * seconds / len(files):.1f} | {seconds / total:.0%} |")
    if args.int8:
        int8_probe(rec, [w for w in windows_all if len(w)])


def int8_probe(rec, windows: list[np.ndarray]) -> None:
    import tempfile

    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ser.frontends.encoders import log_mel, model_dir
    from ser.frontends.whisper_onnx import encoder_weights, graph_depth, read_ct2_variables, weight_layout

    states = tuple(rec.frontend.states)
    depth = graph_depth(states)
    needed = {source for _, source, _, _ in weight_layout(depth)}
    weights = encoder_weights(read_ct2_variables(model_dir() / "model.bin", names=needed), depth)
    graph = onnx.load_from_string(Path(rec.frontend.graph).read_bytes())
    kept = [i for i in graph.graph.initializer if i.name not in weights]
    del graph.graph.initializer[:]
    graph.graph.initializer.extend(kept)
    graph.graph.initializer.extend(numpy_helper.from_array(v.astype(np.float32), k)
                                   for k, v in weights.items())
    with tempfile.TemporaryDirectory() as tmp:
        f32, q8 = f"{tmp}/f32.onnx", f"{tmp}/int8.onnx"
        onnx.save(graph, f32)
        quantize_dynamic(f32, q8, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        sessions = {name: ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                    for name, path in (("float32", f32), ("int8", q8))}
        mels = np.stack([log_mel(w) for ws in windows for w in ws]).astype(np.float32)
        outputs = [o.name for o in sessions["float32"].get_outputs()]
        pooled = {}
        for name, session in sessions.items():
            session.run(outputs, {"mel": mels[:1]})
            t = time.perf_counter()
            for i in range(len(mels)):
                session.run(outputs, {"mel": mels[i : i + 1]})
            print(f"encoder {name}: {1000 * (time.perf_counter() - t) / len(mels):.1f} ms per 3-s window")
            pooled[name] = np.concatenate(session.run(outputs, {"mel": mels}), axis=1)
        a, b = pooled["float32"], pooled["int8"]
        cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        print(f"pooled states, int8 vs float32: cosine min {cosine.min():.4f}, mean {cosine.mean():.4f}")
        same = (rec.classifier.predict_proba(a).argmax(1) == rec.classifier.predict_proba(b).argmax(1))
        print(f"same top emotion: {same.mean():.1%} of {len(same)} windows")


if __name__ == "__main__":
    main()
