from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.audio import (
    AudioFileNotFoundError,
    AudioTooLongError,
    AudioTooShortError,
    EmptyAudioError,
    NonFiniteAudioError,
    NotAudioError,
    decode,
    load_audio,
)

from ..conftest import encode_with_pyav, tone

SR = 16_000


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    # Lossy codecs add delay/padding: align on the best lag within 50 ms.
    n = min(len(a), len(b)) - 2000
    best = 0.0
    for lag in range(0, 1600, 8):
        x, y = a[lag : lag + n], b[:n]
        if len(x) < n:
            break
        best = max(best, float(np.corrcoef(x, y)[0, 1]))
    return best


@pytest.mark.parametrize(
    "fmt,subtype,exact",
    [
        ("WAV", "PCM_16", True),
        ("WAV", "FLOAT", True),
        ("FLAC", "PCM_16", True),
        ("OGG", "VORBIS", False),
        ("OGG", "OPUS", False),
        ("MP3", "MPEG_LAYER_III", False),
    ],
)
def test_soundfile_formats_round_trip(tmp_path, fmt, subtype, exact):
    y = tone(1.0, 48_000 if subtype == "OPUS" else SR)
    sr = 48_000 if subtype == "OPUS" else SR
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, y, sr, format=fmt, subtype=subtype)
    out = load_audio(path, sr)
    assert out.dtype == np.float32 and out.ndim == 1
    if exact:
        assert len(out) == len(y)
        np.testing.assert_allclose(out, y, atol=1e-4)
    else:
        assert abs(len(out) - len(y)) < 0.1 * sr
        assert _correlation(out, y) > 0.95


def _write_pyav(path, y, sr, container, codec):
    encode_with_pyav(Path(path), y, sr, container, codec)


@pytest.mark.parametrize(
    "suffix,container,codec,sr",
    [("m4a", "ipod", "aac", 44_100), ("mp4", "mp4", "aac", 44_100), ("webm", "webm", "libopus", 48_000)],
)
def test_pyav_formats_round_trip(tmp_path, suffix, container, codec, sr):
    y = tone(1.0, sr)
    path = tmp_path / f"clip.{suffix}"
    _write_pyav(path, y, sr, container, codec)
    out = load_audio(path, sr)
    assert abs(len(out) - len(y)) < 0.1 * sr
    assert _correlation(out, y) > 0.9


def test_stereo_is_mixed_down_and_resampled(tmp_path):
    left = tone(1.0, 22_050, 200)
    right = tone(1.0, 22_050, 300)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 22_050, subtype="FLOAT")
    native = load_audio(path, 22_050)
    np.testing.assert_allclose(native, (left + right) / 2, atol=1e-6)
    out = load_audio(path, SR)
    assert len(out) == SR  # 1 s at the new rate


def test_bytes_file_objects_and_arrays(tmp_path):
    y = tone(0.5, SR)
    buf = io.BytesIO()
    sf.write(buf, y, SR, format="WAV", subtype="FLOAT")
    data = buf.getvalue()
    np.testing.assert_allclose(load_audio(data, SR), y, atol=1e-6)
    np.testing.assert_allclose(load_audio(io.BytesIO(data), SR), y, atol=1e-6)
    assert decode(y, SR, source_rate=SR).duration_s == pytest.approx(0.5)
    with pytest.raises(TypeError):
        decode(y, SR)


def test_missing_and_directory(tmp_path):
    with pytest.raises(AudioFileNotFoundError, match="no such file"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioFileNotFoundError, match="not a file"):
        load_audio(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(EmptyAudioError, match="empty"):
        load_audio(path)


@pytest.mark.parametrize(
    "payload",
    [b"this is plainly a text file, not audio\n" * 20, bytes(range(256)) * 8, b"RIFF\x00\x00"],
)
def test_not_audio(tmp_path, payload):
    path = tmp_path / "fake.wav"
    path.write_bytes(payload)
    with pytest.raises(NotAudioError):
        load_audio(path)


def test_truncated_wav_keeps_error_typed(tmp_path):
    buf = io.BytesIO()
    sf.write(buf, tone(1.0, SR), SR, format="WAV")
    with pytest.raises((NotAudioError, AudioTooShortError, EmptyAudioError)):
        load_audio(buf.getvalue()[:30])


def test_too_short_and_too_long():
    with pytest.raises(AudioTooShortError, match="too short"):
        decode(np.zeros(100, np.float32), SR, source_rate=SR)
    with pytest.raises(AudioTooLongError, match="limit"):
        decode(np.zeros(SR * 5, np.float32), SR, source_rate=SR, max_duration_s=2.0)


def test_too_long_is_refused_from_the_header(tmp_path):
    path = tmp_path / "long.flac"
    sf.write(path, np.zeros(SR * 20, np.float32), SR)
    with pytest.raises(AudioTooLongError):
        load_audio(path, SR, max_duration_s=10.0)


def test_non_finite_samples(tmp_path):
    y = tone(0.5, SR)
    y[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    with pytest.raises(NonFiniteAudioError, match="NaN"):
        load_audio(path, SR)


def test_errors_are_value_errors_with_the_file_name(tmp_path):
    path = tmp_path / "garbage.mp3"
    path.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(ValueError) as info:
        load_audio(path)
    assert "garbage.mp3" in str(info.value)


@pytest.mark.parametrize("fmt,subtype", [("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("WAV", "PCM_16")])
def test_truncated_file_is_analysed_with_a_warning(fmt, subtype):
    """Half a file decodes what is there (as players do) and says so: warnings == ("truncated",)."""
    from ser.audio import decode

    from ..conftest import speech

    buf = io.BytesIO()
    y = np.concatenate([speech(), speech()])
    sf.write(buf, y, 16_000, format=fmt, subtype=subtype)
    whole = decode(buf.getvalue(), 16_000)
    assert whole.warnings == ()
    half = decode(buf.getvalue()[: len(buf.getvalue()) // 2], 16_000)
    assert half.warnings == ("truncated",)
    assert 0.2 * len(y) < len(half.samples) < 0.8 * len(y)


def test_decoding_memory_follows_the_output_not_the_input():
    """8 channels at 96 kHz: decoded block by block, down-mixed and resampled on the fly."""
    import tracemalloc

    from ser.audio import decode

    seconds, rate, channels = 20, 96_000, 8
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", rate, channels, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros((rate, channels), np.float32)
        for _ in range(seconds):
            f.write(block)
    data = buf.getvalue()
    tracemalloc.start()
    audio = decode(data, 16_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(audio.samples) == seconds * 16_000
    input_bytes = seconds * rate * channels * 4  # what decoding it whole would take: 61 MB
    assert peak < 0.15 * input_bytes, f"peak {peak / 1e6:.1f} MB"


TINYTAG = Path(__file__).parents[1] / "data" / "tinytag"


def test_damaged_aiff_is_refused_without_a_traceback(capfd):
    from ser.audio import NotAudioError, decode

    with pytest.raises(NotAudioError):
        decode(TINYTAG / "invalid_sample_rate.aiff", 16_000)
    assert "Traceback" not in capfd.readouterr().err


def test_mp3_after_unusual_id3_frames_keeps_its_length():
    from ser.audio import decode

    assert decode(TINYTAG / "id3_frames.mp3", 16_000).duration_s == pytest.approx(4.54, abs=0.02)


@pytest.mark.parametrize("claimed_frames", [None, 2**31 - 1])
def test_a_lying_mp3_header_is_not_called_too_long(claimed_frames):
    from ser.audio import AudioTooLongError, AudioTooShortError, decode

    data = bytearray((TINYTAG / "vbr_xing_header_2channel.mp3").read_bytes())
    if claimed_frames is not None:
        at = data.find(b"Xing") + 8  # flags say a frame count follows
        data[at : at + 4] = claimed_frames.to_bytes(4, "big")
    audio = decode(bytes(data), 16_000, max_duration_s=60)  # whatever the header says:
    assert 0.1 < audio.duration_s < 0.2  # 0.13 s of real audio
    with pytest.raises(AudioTooShortError):
        decode(bytes(data), 16_000, max_duration_s=60, min_duration_s=0.25)
    try:
        decode(bytes(data), 16_000, max_duration_s=60, min_duration_s=None)
    except AudioTooLongError as exc:
        pytest.fail(f"refused as too long: {exc}")


def test_array_with_a_non_positive_rate_is_refused():
    from ser.audio import AudioError, decode

    for rate in (0, -16_000):
        with pytest.raises(AudioError, match="source_rate must be positive"):
            decode(np.zeros(16_000, np.float32), 16_000, source_rate=rate)


def test_384_khz_8_channel_file_decodes_within_a_small_budget():
    import tracemalloc

    from ser.audio import decode

    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", 384_000, 8, format="WAV", subtype="PCM_16") as f:
        for _ in range(3):
            f.write(np.zeros((384_000, 8), np.float32))
    data = buf.getvalue()
    tracemalloc.start()
    audio = decode(data, 16_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(audio.samples) == 3 * 16_000
    assert peak < 12e6  # decoded whole as float32 it would be 37 MB; the file itself is 18 MB
