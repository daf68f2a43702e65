"""Audio decoding: any supported file, bytes or array to mono float32 at a requested rate.

soundfile (libsndfile) handles WAV, FLAC, OGG Vorbis/Opus and MP3; PyAV (FFmpeg) handles what
browsers and phones record: M4A/AAC, MP4, WebM. Every failure is an :class:`AudioError` subclass
with a message meant for a person, never a raw library traceback.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from .common import SerError

AudioSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]

#: Default lower bound on usable audio: shorter input cannot fill one analysis frame sensibly.
DEFAULT_MIN_DURATION_S = 0.25
#: Default upper bound, protecting memory and time; callers may raise or disable it.
DEFAULT_MAX_DURATION_S = 600.0
#: For files on the user's own disk (``ser predict``): an hour-long recording is ordinary there,
#: and nobody else's request waits for it.
FILE_MAX_DURATION_S = 3600.0


class AudioError(SerError, ValueError):
    """Base class for all audio input problems."""


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """The path does not exist or is not a file."""


class EmptyAudioError(AudioError):
    """The input has no bytes, or decodes to no samples."""


class NotAudioError(AudioError):
    """The bytes are not a recognised audio container."""


class UnsupportedCodecError(AudioError):
    """The container is recognised but its audio codec cannot be decoded."""


class AudioTooShortError(AudioError):
    """The audio is shorter than the analysis needs."""


class AudioTooLongError(AudioError):
    """The audio is longer than the configured limit."""


class NonFiniteAudioError(AudioError):
    """The decoded samples contain NaN or infinity."""


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # mono float32
    sample_rate: int
    #: "truncated": the file ended before its header said it would (or its codec broke off);
    #: what decoded cleanly is analysed, as a player would play it.
    warnings: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def _where(name: str) -> str:
    """Error-message prefix: the file's name, or nothing for in-memory bytes."""
    return f"{name}: " if name else ""


def _read_bytes(source: AudioSource) -> tuple[bytes, str]:
    """Return the raw bytes and a display name for error messages ("" for bytes)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), ""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise AudioFileNotFoundError(f"{path}: no such file")
        if not path.is_file():
            raise AudioFileNotFoundError(f"{path}: not a file")
        try:
            return path.read_bytes(), str(path)
        except OSError as exc:
            raise AudioError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            raise NotAudioError("file object is in text mode; open audio files with 'rb'")
        return bytes(data), str(getattr(source, "name", ""))
    raise TypeError(f"cannot read audio from {type(source).__name__}")


#: Input frames decoded per step: bounds the memory a file's rate and channel count can take.
BLOCK_FRAMES = 1 << 16


class _Sink:
    """Collects mono blocks at the input rate, resampled on the fly to the output rate, so
    that peak memory follows the *output* (16 kHz mono), not the input's rate and channels."""

    def __init__(self, in_rate: int, out_rate: int, name: str, max_duration_s: float | None):
        import soxr

        self.stream = (soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
                       if in_rate != out_rate else None)
        self.chunks: list[np.ndarray] = []
        self.in_frames = 0
        self.in_rate, self.name, self.max_duration_s = in_rate, name, max_duration_s

    def add(self, block: np.ndarray) -> None:
        """``block``: (frames, channels) or (frames,) at the input rate."""
        mono = to_mono(block)
        if not np.all(np.isfinite(mono)):
            raise NonFiniteAudioError(f"{_where(self.name)}contains NaN or infinite samples")
        self.in_frames += len(mono)
        if self.max_duration_s is not None and self.in_frames > self.max_duration_s * self.in_rate:
            raise AudioTooLongError(
                f"{_where(self.name)}audio is longer than the limit of {self.max_duration_s:.1f} s")
        self.chunks.append(self.stream.resample_chunk(mono) if self.stream else mono)

    def finish(self) -> np.ndarray:
        if self.stream is not None:
            self.chunks.append(self.stream.resample_chunk(np.zeros(0, np.float32), last=True))
        return np.concatenate(self.chunks).astype(np.float32) if self.chunks else np.zeros(0, np.float32)


def _container_truncated(data: bytes) -> bool:
    """Cut-off containers whose decoders stop quietly: a WAV whose data chunk is shorter than
    its header declares, an Ogg stream whose last page is incomplete or lacks the end flag."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        pos = 12
        while pos + 8 <= len(data):
            size = int.from_bytes(data[pos + 4 : pos + 8], "little")
            if data[pos : pos + 4] == b"data":
                return size != 0xFFFFFFFF and pos + 8 + size > len(data)
            pos += 8 + size + (size & 1)
        return False
    if data[:4] == b"OggS":
        last = data.rfind(b"OggS")
        if last < 0 or last + 27 > len(data):
            return True
        n_segments = data[last + 26]
        if last + 27 + n_segments > len(data):
            return True
        body = sum(data[last + 27 : last + 27 + n_segments])
        complete = last + 27 + n_segments + body <= len(data)
        return not complete or not data[last + 5] & 0x04  # 0x04: end of stream
    return False


class _ClampedBytesIO(io.BytesIO):
    """libsndfile seeks through a Python callback; on some damaged files (an AIFF with an
    invalid rate) it asks for a negative offset, and BytesIO's ValueError then escapes as an
    "Exception ignored in cffi callback" traceback on stderr. Clamp to the start instead: the
    file is refused cleanly either way."""

    def seek(self, offset: int, whence: int = 0) -> int:
        try:
            return super().seek(offset, whence)
        except ValueError:
            return super().seek(0)


def _plausible_duration(declared_s: float, n_bytes: int) -> bool:
    """A header's duration is believed only if the file could hold it at 1 kbit/s or more:
    damaged MP3 headers claim centuries, which must not turn into "too long" errors."""
    return 0 < declared_s <= n_bytes * 8 / 1000


def _looks_like_mp3(data: bytes) -> bool:
    return data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


def _decode_soundfile(
    data: bytes, name: str, rate: int, max_duration_s: float | None
) -> DecodedAudio | None:
    import soundfile as sf

    try:
        f = sf.SoundFile(_ClampedBytesIO(data))
    except Exception:  # libsndfile refuses: fall back to FFmpeg
        return None
    with f:
        # Refuse over-long input from the header, before decoding any of it.
        declared = f.frames / f.samplerate if f.samplerate > 0 else 0.0
        if (max_duration_s is not None and declared > max_duration_s
                and _plausible_duration(declared, len(data))):
            raise AudioTooLongError(
                f"{_where(name)}audio lasts {declared:.1f} s, over the limit of {max_duration_s:.1f} s")
        sink = _Sink(f.samplerate, rate, name, max_duration_s)
        truncated = False
        try:
            for block in f.blocks(BLOCK_FRAMES, dtype="float32", always_2d=True):
                sink.add(block)
        except AudioError:
            raise
        except Exception:
            if not sink.in_frames:
                return None  # nothing decodable here: let FFmpeg try
            truncated = True
        truncated = (truncated or (0 < f.frames < 2**62 and sink.in_frames < f.frames)
                     or _container_truncated(data))
        return DecodedAudio(sink.finish(), rate, ("truncated",) if truncated else ())


def _decode_pyav(data: bytes, name: str, rate: int, max_duration_s: float | None) -> DecodedAudio:
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except Exception:
        raise NotAudioError(f"{_where(name)}not a recognised audio file") from None
    try:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams:
            raise NotAudioError(f"{_where(name)}the file has no audio stream")
        stream = streams[0]
        try:
            in_rate = int(stream.codec_context.sample_rate or stream.rate or 0)
        except Exception:
            in_rate = 0
        if in_rate <= 0:
            raise UnsupportedCodecError(f"{_where(name)}audio stream has no sample rate")
        if max_duration_s is not None and stream.duration and stream.time_base:
            declared = float(stream.duration * stream.time_base)
            if declared > max_duration_s and _plausible_duration(declared, len(data)):
                raise AudioTooLongError(f"{_where(name)}audio lasts {declared:.1f} s, over the "
                                        f"limit of {max_duration_s:.1f} s")
        # FFmpeg converts the sample format and down-mixes; resampling stays with soxr.
        resampler = av.AudioResampler(format="flt", layout="mono", rate=in_rate)
        sink = _Sink(in_rate, rate, name, max_duration_s)
        truncated = False
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    sink.add(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                sink.add(out.to_ndarray().reshape(-1))
        except AudioError:
            raise
        except Exception as exc:
            if not sink.in_frames:
                kind = type(exc).__name__
                if "Decoder" in kind or "codec" in str(exc).lower():
                    raise UnsupportedCodecError(f"{_where(name)}audio codec cannot be decoded") from None
                raise NotAudioError(f"{_where(name)}audio data is corrupt or truncated") from None
            truncated = True  # keep what decoded cleanly before a broken tail, as players do
        if not sink.in_frames:
            raise EmptyAudioError(f"{_where(name)}the file contains no audio samples")
        return DecodedAudio(sink.finish(), rate, ("truncated",) if truncated else ())
    finally:
        container.close()


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average channels: (frames, channels) or (frames,) -> (frames,) float32."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if audio.ndim != 1:
        raise AudioError(f"expected 1-D or 2-D (frames, channels) audio, got shape {audio.shape}")
    return np.ascontiguousarray(audio, dtype=np.float32)


def resample(samples: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    if orig_sr == target_sr:
        return samples
    import soxr

    return soxr.resample(samples, orig_sr, target_sr, quality="HQ").astype(np.float32)


def check_samples(
    samples: np.ndarray,
    sample_rate: int,
    name: str = "audio",
    min_duration_s: float | None = DEFAULT_MIN_DURATION_S,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
) -> None:
    """Raise the matching :class:`AudioError` if the samples cannot be analysed."""
    if samples.size == 0:
        raise EmptyAudioError(f"{_where(name)}contains no audio samples")
    if not np.all(np.isfinite(samples)):
        raise NonFiniteAudioError(f"{_where(name)}contains NaN or infinite samples")
    duration = samples.size / sample_rate
    if min_duration_s is not None and duration < min_duration_s:
        raise AudioTooShortError(
            f"{_where(name)}{duration:.2f} s of audio is too short to analyse "
            f"(at least {min_duration_s:.2f} s needed)"
        )
    if max_duration_s is not None and duration > max_duration_s:
        raise AudioTooLongError(
            f"{_where(name)}audio lasts {duration:.1f} s, over the limit of {max_duration_s:.1f} s"
        )


def load_audio(
    source: AudioSource | np.ndarray,
    sample_rate: int = 16_000,
    *,
    source_rate: int | None = None,
    min_duration_s: float | None = DEFAULT_MIN_DURATION_S,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
) -> np.ndarray:
    """Decode ``source`` to mono float32 samples at ``sample_rate``.

    ``source`` is a path, bytes, a binary file object, or a NumPy array (then ``source_rate``
    gives its rate). Raises an :class:`AudioError` subclass for every kind of bad input.

    >>> y = load_audio("speech.flac", 16_000)  # doctest: +SKIP
    """
    return decode(
        source,
        sample_rate,
        source_rate=source_rate,
        min_duration_s=min_duration_s,
        max_duration_s=max_duration_s,
    ).samples


def decode(
    source: AudioSource | np.ndarray,
    sample_rate: int = 16_000,
    *,
    source_rate: int | None = None,
    min_duration_s: float | None = DEFAULT_MIN_DURATION_S,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
) -> DecodedAudio:
    """Like :func:`load_audio`, returning a :class:`DecodedAudio`."""
    if isinstance(source, np.ndarray):
        if source_rate is None:
            raise TypeError("source_rate is required when passing an array")
        if int(source_rate) <= 0:
            raise AudioError(f"source_rate must be positive, not {source_rate}")
        if not np.issubdtype(source.dtype, np.number):
            raise AudioError(f"array of dtype {source.dtype} is not audio")
        samples = to_mono(source if source.ndim == 1 else _frames_first(source))
        # Check length before resampling (cheap rejection), finiteness too.
        check_samples(samples, int(source_rate), "array", min_duration_s, max_duration_s)
        return DecodedAudio(resample(samples, int(source_rate), sample_rate), sample_rate)
    data, name = _read_bytes(source)
    if not data:
        raise EmptyAudioError(f"{_where(name)}the file is empty")
    if _looks_like_mp3(data):
        # FFmpeg's MP3 decoder finds the length players report where libsndfile's mpg123 loses
        # frames after unusual ID3 tags or trusts a wrong Xing header (tinytag's test files).
        try:
            decoded = _decode_pyav(data, name, sample_rate, max_duration_s)
        except (NotAudioError, UnsupportedCodecError, EmptyAudioError):
            decoded = _decode_soundfile(data, name, sample_rate, max_duration_s)
            if decoded is None:
                raise
    else:
        decoded = _decode_soundfile(data, name, sample_rate, max_duration_s)
        if decoded is None:
            decoded = _decode_pyav(data, name, sample_rate, max_duration_s)
    check_samples(decoded.samples, sample_rate, name, min_duration_s, max_duration_s)
    return decoded


def _frames_first(audio: np.ndarray) -> np.ndarray:
    # Accept (channels, frames) as librosa produces, as well as (frames, channels).
    if audio.ndim == 2 and audio.shape[0] < audio.shape[1] and audio.shape[0] <= 8:
        return audio.T
    return audio
