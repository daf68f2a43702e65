"""`ser listen`: live analysis from the microphone (or a file replayed at speaking pace), one
line per utterance as it ends, with the running shares; ``--format jsonl`` for piping."""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time

import numpy as np

from ser.interfaces.cli.base import CliError

PIECE_S = 0.1  # what the microphone or the replay hands over at a time


def _file_pieces(path: str, rate: int, realtime: bool):
    """A file's samples in 0.1-s pieces, at speaking pace unless ``realtime`` is off."""
    from ser.audio import FILE_MAX_DURATION_S, AudioStream

    stream, started, sent = AudioStream(path, rate, max_duration_s=FILE_MAX_DURATION_S), time.monotonic(), 0
    step = int(PIECE_S * rate)
    for block in stream:
        for i in range(0, len(block), step):
            piece = block[i : i + step]
            if realtime:
                time.sleep(max(0.0, started + sent / rate - time.monotonic()))
            sent += len(piece)
            yield piece


def _microphone_pieces(rate: int, device):
    """The default (or given) input device's samples as they are recorded."""
    try:
        import sounddevice as sd
    except ImportError:
        raise CliError("ser listen needs the live extra for the microphone: "
                       "pip install 'ser[live]' (or give --input FILE)") from None
    except OSError as exc:  # the PortAudio library itself is missing
        raise CliError(f"no audio input: {exc} (install PortAudio, or give --input FILE)") from None
    try:
        sd.query_devices(device, kind="input")
    except (ValueError, sd.PortAudioError) as exc:
        raise CliError(f"no input device: {exc} (give --device, or --input FILE)") from None
    pieces: queue.Queue = queue.Queue()
    with sd.InputStream(samplerate=rate, channels=1, dtype="float32", device=device,
                        blocksize=int(PIECE_S * rate),
                        callback=lambda data, *_: pieces.put(data[:, 0].copy())):
        print("ser: listening (Ctrl-C to stop)", file=sys.stderr)
        while True:
            yield pieces.get()


class _Printer:
    """Events as lines: utterances and the summary (text), or every event (jsonl)."""

    def __init__(self, fmt: str, out=None):
        self.fmt, self.out = fmt, out or sys.stdout
        out = self.out
        self.seconds: dict[str, float] = {}
        self.status = out.isatty() and fmt == "text"  # an interim line overwritten in place

    def __call__(self, event: dict) -> None:
        if self.fmt == "jsonl":
            self.out.write(json.dumps(event) + "\n")
            self.out.flush()
            return
        kind = event["type"]
        if kind == "interim" and self.status:
            self.out.write(f"\r  … {event['emotion']} {100 * event['confidence']:.0f}% so far\033[K")
        elif kind == "utterance":
            self.seconds[event["emotion"]] = (self.seconds.get(event["emotion"], 0.0)
                                              + event["end_s"] - event["start_s"])
            total = sum(self.seconds.values())
            shares = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in
                               sorted(self.seconds.items(), key=lambda kv: -kv[1]))
            mark = " (uncertain)" if event["uncertain"] else ""
            clear = "\r\033[K" if self.status else ""
            self.out.write(f"{clear}{event['start_s']:7.1f}-"
                           f"{event['end_s']:.1f} s  {event['emotion']:<8} "
                           f"{100 * event['confidence']:3.0f}%{mark}   so far: {shares}\n")
        elif kind == "summary":
            if self.status:
                self.out.write("\r\033[K")
            if event["emotion"] == "no_speech":
                self.out.write(f"no speech in {event['duration_s']:.1f} s\n")
            else:
                share = ("no emotion holds 60% of the speaking time" if event["summary"] == "mixed"
                         else f"{100 * event['summary_share']:.0f}% of the speaking time")
                self.out.write(f"summary: {event['summary']} ({share}); {len(event['segments'])} "
                               f"utterance(s), {event['speech_s']:.1f} s of speech in "
                               f"{event['duration_s']:.1f} s"
                               + (f"; adapted to the speaker over {event['adapted_utterances']} "
                                  "utterances" if event.get("adapted") else "") + "\n")
        self.out.flush()


def cmd_listen(args: argparse.Namespace) -> int:
    from ser.serving.inference import EmotionRecognizer

    rec = EmotionRecognizer.load(args.model)
    rate = rec.feature_config.sample_rate
    pieces = (_file_pieces(args.input, rate, args.realtime) if args.input
              else _microphone_pieces(rate, int(args.device) if str(args.device).isdigit()
                                      else args.device))
    show = _Printer(args.format)
    session = rec.stream(rate)
    try:
        for piece in pieces:
            for event in session.feed(np.asarray(piece, np.float32)):
                show(event)
    except KeyboardInterrupt:
        pass  # Ctrl-C ends the stream: the last utterances and the summary still come
    finally:
        if hasattr(pieces, "close"):
            pieces.close()
    for event in session.close():
        show(event)
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("listen", help="analyse the microphone live: one line per utterance as it ends")
    p.add_argument("--input", metavar="FILE",
                   help="replay this audio file at speaking pace instead of the microphone")
    p.add_argument("--no-realtime", dest="realtime", action="store_false",
                   help="with --input: as fast as the machine goes")
    p.add_argument("--format", choices=["text", "jsonl"], default="text",
                   help="text: utterances and the summary; jsonl: every event as a JSON line")
    p.add_argument("--model", default=None,
                   help="a shipped model's name (default, reference, light) or a bundle folder")
    p.add_argument("--device", default=None,
                   help="input device (number or name, as `python -m sounddevice` lists them)")
    p.set_defaults(func=cmd_listen)
