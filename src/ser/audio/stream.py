"""Reading audio: any supported file, bytes or array to mono float32 at a requested rate,
block by block (:class:`AudioStream`, memory bounded at any length) or whole (:func:`decode`,
:func:`load_audio`). Which decoder reads what is :mod:`ser.audio.decoders`' business.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ser.audio.decoders import (
    ARRAY_BLOCK_S, _array_samples, _blocks_pyav, _blocks_soundfile, _input, _Input,
    _looks_like_mp3, _NotForThisDecoder, _where, check_samples, resample,
)
from ser.audio.errors import (
    DEFAULT_MAX_DURATION_S, DEFAULT_MIN_DURATION_S, AudioError, AudioSource, AudioTooLongError,
    AudioTooShortError, EmptyAudioError, NotAudioError, UnsupportedCodecError,
)


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


class AudioStream:
    """Decoded audio as mono float32 blocks at ``sample_rate``, read once, in order: memory
    stays that of one block whatever the input's length. After the blocks, ``duration_s`` and
    ``warnings`` are known; ``declared_s`` (the header's duration, when it has a believable
    one) is known after the first block. The same errors as :func:`decode`; an input that ends
    up shorter than ``min_duration_s`` raises at the end.
    """

    def __init__(self, source: AudioSource | np.ndarray, sample_rate: int = 16_000, *,
                 source_rate: int | None = None,
                 min_duration_s: float | None = DEFAULT_MIN_DURATION_S,
                 max_duration_s: float | None = DEFAULT_MAX_DURATION_S):
        self.sample_rate = sample_rate
        self.min_duration_s, self.max_duration_s = min_duration_s, max_duration_s
        self.samples_out = 0
        self.declared_s: float | None = None
        self.warnings: tuple[str, ...] = ()
        self._result: dict = {}
        if isinstance(source, np.ndarray):
            self.name = "array"
            samples = _array_samples(source, source_rate, min_duration_s, max_duration_s)
            self.declared_s = len(samples) / int(source_rate)
            out = resample(samples, int(source_rate), sample_rate)
            step = ARRAY_BLOCK_S * sample_rate  # in blocks, as from a file: progress moves
            self._blocks = (out[i : i + step] for i in range(0, len(out), step))
            return
        src = _input(source)
        self.name = src.name
        if not src.size:
            raise EmptyAudioError(f"{_where(src.name)}the file is empty")
        self._blocks = self._decoded(src)

    def _decoded(self, src: _Input):
        rate, limit = self.sample_rate, self.max_duration_s
        if _looks_like_mp3(src.head):
            # FFmpeg's MP3 decoder finds the length players report where libsndfile's mpg123
            # loses frames after unusual ID3 tags or trusts a wrong Xing header. (libsndfile
            # takes only what FFmpeg refuses and it reads: decoders.libsndfile_reads.)
            order = [(_blocks_pyav, (NotAudioError, UnsupportedCodecError, EmptyAudioError)),
                     (_blocks_soundfile, ())]
        else:
            order = [(_blocks_soundfile, ()), (_blocks_pyav, ())]
        error: AudioError | None = None
        for decoder, fall_through in order:
            started = False
            try:
                for block in decoder(src, rate, limit, self._result):
                    started = True
                    if self._result.get("declared_s") is not None:
                        self.declared_s = self._result["declared_s"]
                    yield block
                return
            except _NotForThisDecoder:
                continue
            except fall_through as exc:
                if started:
                    raise
                error = error or exc  # the first decoder's reason, unless the other succeeds
        raise error or NotAudioError(f"{_where(src.name)}not a recognised audio file")

    def __iter__(self):
        for block in self._blocks:
            if len(block):
                self.samples_out += len(block)
                yield block
        self.warnings = ("truncated",) if self._result.get("truncated") else ()
        self._check_end()

    def _check_end(self) -> None:
        if self.samples_out == 0:
            raise EmptyAudioError(f"{_where(self.name)}contains no audio samples")
        if self.min_duration_s is not None and self.duration_s < self.min_duration_s:
            raise AudioTooShortError(
                f"{_where(self.name)}{self.duration_s:.2f} s of audio is too short to analyse "
                f"(at least {self.min_duration_s:.2f} s needed)")
        if self.max_duration_s is not None and self.duration_s > self.max_duration_s:
            raise AudioTooLongError(f"{_where(self.name)}audio lasts {self.duration_s:.1f} s, "
                                    f"over the limit of {self.max_duration_s:.1f} s")

    @property
    def duration_s(self) -> float:
        """Seconds decoded so far (all of them once the blocks are read)."""
        return self.samples_out / self.sample_rate


def decode(
    source: AudioSource | np.ndarray,
    sample_rate: int = 16_000,
    *,
    source_rate: int | None = None,
    min_duration_s: float | None = DEFAULT_MIN_DURATION_S,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
) -> DecodedAudio:
    """Like :func:`load_audio`, returning a :class:`DecodedAudio` (the whole signal in memory;
    :class:`AudioStream` reads it block by block)."""
    stream = AudioStream(source, sample_rate, source_rate=source_rate,
                         min_duration_s=min_duration_s, max_duration_s=max_duration_s)
    blocks = list(stream)
    samples = np.concatenate(blocks).astype(np.float32, copy=False)
    check_samples(samples, sample_rate, stream.name if stream.name != "array" else "array",
                  min_duration_s, max_duration_s)
    return DecodedAudio(samples, sample_rate, stream.warnings)
