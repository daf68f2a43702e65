"""The decoders behind :class:`ser.audio.stream.AudioStream`: each yields mono float32
blocks at a requested rate from one kind of input, at bounded memory.

soundfile (libsndfile) handles WAV, FLAC, OGG Vorbis/Opus and MP3; PyAV (FFmpeg) handles what
browsers and phones record: M4A/AAC, MP4, WebM. Arrays already in memory are checked here too.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser.audio.errors import (
    DEFAULT_MAX_DURATION_S, DEFAULT_MIN_DURATION_S, AudioError, AudioFileNotFoundError,
    AudioSource, AudioTooLongError, AudioTooShortError, EmptyAudioError, NonFiniteAudioError,
    NotAudioError, UnsupportedCodecError,
)


def _where(name: str) -> str:
    """Error-message prefix: the file's name, or nothing for in-memory bytes."""
    return f"{name}: " if name else ""


def _read_bytes(source: AudioSource) -> tuple[bytes, str]:
    """The bytes of in-memory input or a file object, and a display name for error messages
    ("" for bytes); paths are opened by the decoders themselves (:func:`_input`)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), ""
    if hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            raise NotAudioError("file object is in text mode; open audio files with 'rb'")
        return bytes(data), str(getattr(source, "name", ""))
    raise TypeError(f"cannot read audio from {type(source).__name__}")


#: Seconds per block when the input is an array already in memory.
ARRAY_BLOCK_S = 10
#: Input frames decoded per step: bounds the memory a file's rate and channel count can take.
BLOCK_FRAMES = 1 << 16


class _Sink:
    """Turns blocks at the input rate into mono blocks at the output rate, resampled on the
    fly, so that memory follows the *output* (16 kHz mono), never the input's rate, channels or
    length: the decoders are generators of these blocks."""

    def __init__(self, in_rate: int, out_rate: int, name: str, max_duration_s: float | None):
        import soxr

        self.stream = (soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
                       if in_rate != out_rate else None)
        self.in_frames = 0
        self.in_rate, self.name, self.max_duration_s = in_rate, name, max_duration_s

    def add(self, block: np.ndarray) -> np.ndarray:
        """``block``: (frames, channels) or (frames,) at the input rate -> output block."""
        mono = to_mono(block)
        if not np.all(np.isfinite(mono)):
            raise NonFiniteAudioError(f"{_where(self.name)}contains NaN or infinite samples")
        self.in_frames += len(mono)
        if self.max_duration_s is not None and self.in_frames > self.max_duration_s * self.in_rate:
            raise AudioTooLongError(
                f"{_where(self.name)}audio is longer than the limit of {self.max_duration_s:.1f} s")
        return np.asarray(self.stream.resample_chunk(mono) if self.stream else mono, np.float32)

    def finish(self) -> np.ndarray:
        if self.stream is None:
            return np.zeros(0, np.float32)
        return np.asarray(self.stream.resample_chunk(np.zeros(0, np.float32), last=True), np.float32)


@dataclass(frozen=True)
class _Input:
    """An input to decode without holding a file in memory: a path is opened by the decoders
    themselves; bytes (uploads, file objects) are kept. ``head`` and ``tail`` (the first and
    last 128 kB) answer the container checks either way."""

    name: str
    size: int
    head: bytes
    tail: bytes
    path: str | None = None
    data: bytes | None = None

    def open(self):
        """What soundfile and PyAV read: the path, or the bytes as a file object."""
        return self.path if self.path is not None else _ClampedBytesIO(self.data)


_PROBE = 1 << 17  # an Ogg page is at most 65,307 bytes: the tail holds the last one whole


def _input(source: AudioSource) -> _Input:
    """Check ``source`` and describe it (see :class:`_Input`)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise AudioFileNotFoundError(f"{path}: no such file")
        if not path.is_file():
            raise AudioFileNotFoundError(f"{path}: not a file")
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                head = f.read(_PROBE)
                f.seek(max(0, size - _PROBE))
                tail = f.read()
        except OSError as exc:
            raise AudioError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        return _Input(str(path), size, head, tail, path=str(path))
    data, name = _read_bytes(source)
    return _Input(name, len(data), data[:_PROBE], data[-_PROBE:], data=data)


def _container_truncated(head: bytes, tail: bytes, size: int) -> bool:
    """Cut-off containers whose decoders stop quietly: a WAV whose data chunk is shorter than
    its header declares, an Ogg stream whose last page is incomplete or lacks the end flag."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        pos = 12
        while pos + 8 <= len(head):
            chunk = int.from_bytes(head[pos + 4 : pos + 8], "little")
            if head[pos : pos + 4] == b"data":
                return chunk != 0xFFFFFFFF and pos + 8 + chunk > size
            pos += 8 + chunk + (chunk & 1)
        return False
    if head[:4] == b"OggS":
        last = tail.rfind(b"OggS")
        if last < 0 or last + 27 > len(tail):
            return True
        n_segments = tail[last + 26]
        if last + 27 + n_segments > len(tail):
            return True
        body = sum(tail[last + 27 : last + 27 + n_segments])
        complete = last + 27 + n_segments + body <= len(tail)
        return not complete or not tail[last + 5] & 0x04  # 0x04: end of stream
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


#: How the containers libsndfile reads begin (WAV, RF64, Wave64, FLAC, Ogg, AIFF, AU, CAF, and
#: MP3 with its ID3 tag). Other bytes go to FFmpeg alone — bare MPEG frames included, which
#: FFmpeg reads better: libsndfile's MP3 probe would print resync notes to the process's
#: standard error for every file that is not one.
_SNDFILE_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"riff", b"fLaC", b"OggS", b"FORM", b".snd",
                  b"caff", b"ID3")


def libsndfile_reads(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts a container libsndfile is asked to read."""
    return head.startswith(_SNDFILE_MAGIC)


class _NotForThisDecoder(Exception):
    """The decoder produced nothing from the input: let the other one try."""


def _blocks_soundfile(src: _Input, rate: int, max_duration_s: float | None, result: dict):
    """16-kHz mono blocks through libsndfile; raises _NotForThisDecoder before the first block
    when it cannot read the input. ``result["truncated"]`` is set at the end."""
    import soundfile as sf

    if not libsndfile_reads(src.head):
        raise _NotForThisDecoder
    try:
        f = sf.SoundFile(src.open())
    except Exception:  # libsndfile refuses: fall back to FFmpeg
        raise _NotForThisDecoder from None
    with f:
        # Refuse over-long input from the header, before decoding any of it.
        declared = f.frames / f.samplerate if f.samplerate > 0 else 0.0
        if (max_duration_s is not None and declared > max_duration_s
                and _plausible_duration(declared, src.size)):
            raise AudioTooLongError(
                f"{_where(src.name)}audio lasts {declared:.1f} s, over the limit of {max_duration_s:.1f} s")
        result["declared_s"] = declared if _plausible_duration(declared, src.size) else None
        sink = _Sink(f.samplerate, rate, src.name, max_duration_s)
        truncated = False
        blocks = f.blocks(BLOCK_FRAMES, dtype="float32", always_2d=True)
        while True:
            try:
                block = next(blocks)
            except StopIteration:
                break
            except AudioError:
                raise
            except Exception:
                if not sink.in_frames:
                    raise _NotForThisDecoder from None  # nothing decodable here: FFmpeg tries
                truncated = True
                break
            yield sink.add(block)
        yield sink.finish()
        result["truncated"] = (truncated or (0 < f.frames < 2**62 and sink.in_frames < f.frames)
                               or _container_truncated(src.head, src.tail, src.size))


def _blocks_pyav(src: _Input, rate: int, max_duration_s: float | None, result: dict):
    """16-kHz mono blocks through FFmpeg (PyAV); errors are AudioErrors."""
    import av

    try:
        container = av.open(src.open(), mode="r", metadata_errors="ignore")
    except Exception:
        raise NotAudioError(f"{_where(src.name)}not a recognised audio file") from None
    try:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams:
            raise NotAudioError(f"{_where(src.name)}the file has no audio stream")
        stream = streams[0]
        try:
            in_rate = int(stream.codec_context.sample_rate or stream.rate or 0)
        except Exception:
            in_rate = 0
        if in_rate <= 0:  # what FFmpeg's probe makes of arbitrary bytes
            raise NotAudioError(f"{_where(src.name)}not a recognised audio file")
        if stream.duration and stream.time_base:
            declared = float(stream.duration * stream.time_base)
            if (max_duration_s is not None and declared > max_duration_s
                    and _plausible_duration(declared, src.size)):
                raise AudioTooLongError(f"{_where(src.name)}audio lasts {declared:.1f} s, over the "
                                        f"limit of {max_duration_s:.1f} s")
            result["declared_s"] = declared if _plausible_duration(declared, src.size) else None
        # FFmpeg converts the sample format and down-mixes; resampling stays with soxr.
        resampler = av.AudioResampler(format="flt", layout="mono", rate=in_rate)
        sink = _Sink(in_rate, rate, src.name, max_duration_s)
        truncated = False
        frames = container.decode(stream)
        while True:
            try:
                # A frame whose rate or layout changed mid-stream (a corrupt frame header) makes
                # the resampler refuse it: the stream breaks off there, as when a frame fails
                # to decode.
                converted = resampler.resample(next(frames))
            except StopIteration:
                break
            except AudioError:
                raise
            except Exception as exc:
                if not sink.in_frames:
                    kind = type(exc).__name__
                    if "Decoder" in kind or "codec" in str(exc).lower():
                        raise UnsupportedCodecError(
                            f"{_where(src.name)}audio codec cannot be decoded") from None
                    raise NotAudioError(f"{_where(src.name)}audio data is corrupt or truncated") from None
                truncated = True  # keep what decoded cleanly before a broken tail, as players do
                break
            for out in converted:
                yield sink.add(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            yield sink.add(out.to_ndarray().reshape(-1))
        if not sink.in_frames:
            raise EmptyAudioError(f"{_where(src.name)}the file contains no audio samples")
        yield sink.finish()
        result["truncated"] = truncated
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


def declared_duration(source: "str | os.PathLike | bytes") -> float | None:
    """The duration a file's (or in-memory file's) header declares, read without decoding
    (None when it has none, is not audio, or cannot be opened: the decoders then say why)."""
    def opened():
        return io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")

    try:
        import soundfile as sf

        with opened() as f:
            head = f.read(16)
            if not libsndfile_reads(head):
                raise ValueError("not a libsndfile container")
            f.seek(0)
            info = sf.info(f)
        if info.samplerate > 0 and 0 < info.frames < 2**62:
            return info.frames / info.samplerate
    except Exception:  # noqa: BLE001 - libsndfile refuses: ask FFmpeg
        pass
    try:
        import av

        with opened() as f, av.open(f, metadata_errors="ignore") as container:
            if container.duration:
                return container.duration / 1_000_000  # microseconds
    except Exception:  # noqa: BLE001
        pass
    return None


def _array_samples(source: np.ndarray, source_rate, min_duration_s, max_duration_s) -> np.ndarray:
    if source_rate is None:
        raise TypeError("source_rate is required when passing an array")
    if int(source_rate) <= 0:
        raise AudioError(f"source_rate must be positive, not {source_rate}")
    if not np.issubdtype(source.dtype, np.number):
        raise AudioError(f"array of dtype {source.dtype} is not audio")
    samples = to_mono(source if source.ndim == 1 else _frames_first(source))
    # Check length before resampling (cheap rejection), finiteness too.
    check_samples(samples, int(source_rate), "array", min_duration_s, max_duration_s)
    return samples


def _frames_first(audio: np.ndarray) -> np.ndarray:
    # Accept (channels, frames) as librosa produces, as well as (frames, channels).
    if audio.ndim == 2 and audio.shape[0] < audio.shape[1] and audio.shape[0] <= 8:
        return audio.T
    return audio
