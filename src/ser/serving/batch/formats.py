"""A batch's rows as table, JSON, JSON Lines, CSV or Parquet (one schema whatever the rows)."""

from __future__ import annotations

import json
from pathlib import Path

from ser.common import EMOTIONS, ConfigError
from ser.serving.inference import PREDICTION_FIELDS


FORMATS = ("table", "json", "jsonl", "csv", "parquet")


def write(rows: list[dict], output: Path, fmt: str) -> None:
    if fmt == "parquet":
        _write_parquet(rows, output)
    else:
        output.write_text(format_rows(rows, fmt))


#: Result fields that are not scalars: spread into one column per emotion (probabilities) or
#: written as JSON text in flat formats.
NESTED_FIELDS = ("probabilities", "segments", "emotion_shares", "warnings")


def flat_row(row: dict) -> dict:
    """A result as flat columns: probabilities one per emotion, nested parts as JSON text."""
    flat = {k: v for k, v in row.items() if k not in NESTED_FIELDS}
    flat.update({k: row.get("probabilities", {}).get(k) for k in EMOTIONS})
    for key in NESTED_FIELDS[1:]:
        flat[key] = json.dumps(row[key]) if key in row else None
    flat.setdefault("error", None)
    return flat


def parquet_schema():
    """The one Arrow schema of every Parquet output, whatever the rows hold (all results, all
    errors, or both): the contract's scalars, one probability column per emotion (as in CSV),
    nested types for the shares, segments and warnings, and ``error``."""
    import pyarrow as pa

    emotions = pa.struct([(e, pa.float64()) for e in EMOTIONS])
    segment = pa.struct([("start_s", pa.float64()), ("end_s", pa.float64()),
                         ("emotion", pa.string()), ("confidence", pa.float64())])
    return pa.schema([
        ("path", pa.string()), ("emotion", pa.string()), ("confidence", pa.float64()),
        ("uncertain", pa.bool_()), ("duration_s", pa.float64()), ("speech_s", pa.float64()),
        *[(e, pa.float64()) for e in EMOTIONS],
        ("emotion_shares", emotions), ("segments", pa.list_(segment)),
        ("warnings", pa.list_(pa.string())), ("summary", pa.string()),
        ("summary_share", pa.float64()), ("adapted", pa.bool_()), ("adapted_utterances", pa.int64()),
        ("model", pa.string()), ("model_version", pa.string()),
        ("error", pa.string()),
    ])


def _write_parquet(rows: list[dict], output: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("Parquet output needs pyarrow: pip install 'ser[ray]'") from None
    schema = parquet_schema()
    columns = {name: [] for name in schema.names}
    for row in rows:
        probabilities = row.get("probabilities") or {}
        for name in schema.names:
            columns[name].append(probabilities.get(name) if name in EMOTIONS else row.get(name))
    pq.write_table(pa.table(columns, schema=schema), output)


def format_rows(rows: list[dict], fmt: str) -> str:
    import csv
    import io

    if fmt == "jsonl":
        return "".join(json.dumps(r) + "\n" for r in rows)
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        # The contract's scalar fields, then one column per emotion (nested parts left out).
        scalars = [f for f in PREDICTION_FIELDS if f not in NESTED_FIELDS]
        fields = [*scalars, *EMOTIONS, "error"]
        writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow(flat_row(r))
        return buf.getvalue()
    rows = [r for r in rows if "error" not in r]  # the table lists results; errors go to stderr
    width = max([len(r["path"]) for r in rows] + [4])
    # conf: a clip's top probability; a recording shows its speaking-time shares instead.
    lines = [f"{'file':<{width}}  {'emotion':<10} {'conf':>5}  {'dur_s':>6}  {'speech_s':>8}  segments"]
    for r in rows:
        segments = r["segments"]
        if len(segments) > 1:  # a recording: its summary, then one line per utterance
            # No single confidence: the summary rests on shares of speaking time (next line), and
            # each utterance has its own confidence (the lines after).
            summary = r.get("summary", r["emotion"])
            shares = sorted(r["emotion_shares"].items(), key=lambda kv: -kv[1])
            lines.append(f"{r['path']:<{width}}  {summary:<10} {'-':>5}  {r['duration_s']:>6.2f}  "
                         f"{r['speech_s']:>8.2f}  {len(segments)}")
            top = ", ".join(f"{e} {v:.0%}" for e, v in shares[:3] if v > 0)
            adapted = (f" (adapted to the speaker over {r['adapted_utterances']} utterances)"
                       if r.get("adapted") else "")
            lines.append(f"  speaking time: {top}{adapted}")
            for s in segments:
                lines.append(f"  {s['start_s']:>8.2f}-{s['end_s']:<8.2f} {s['emotion']:<10} "
                             f"{s['confidence']:.2f}")
        else:
            emotion = r["emotion"] + ("?" if r.get("uncertain") else "")
            lines.append(f"{r['path']:<{width}}  {emotion:<10} {r['confidence']:>5.2f}  "
                         f"{r['duration_s']:>6.2f}  {r['speech_s']:>8.2f}  {len(segments)}")
            if r.get("adapted"):  # a clip adapted with the other files of its speaker
                lines.append(f"  adapted to the speaker over {r['adapted_utterances']} utterances")
        lines += [f"  warning: {w}" for w in r.get("warnings", [])]
    return "\n".join(lines) + "\n" if rows else ""
