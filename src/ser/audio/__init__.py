"""Audio: bytes, paths and arrays become 16-kHz mono float32 — block by block at bounded
memory (:class:`AudioStream`) or whole (:func:`decode`, :func:`load_audio`) — with typed errors
(``errors``); the codec back ends (``decoders``); which files are audio (``files``); and where
the speech is (``vad``: Silero VAD on ONNX Runtime).

Imports nothing of ser's but ``ser.common`` (an import-linter contract in pyproject.toml).
"""

from ser.audio.errors import (  # noqa: F401
    DEFAULT_MAX_DURATION_S, DEFAULT_MIN_DURATION_S, FILE_MAX_DURATION_S, AudioError,
    AudioFileNotFoundError, AudioSource, AudioTooLongError, AudioTooShortError, EmptyAudioError,
    NonFiniteAudioError, NotAudioError, UnsupportedCodecError,
)
from ser.audio.files import AUDIO_SUFFIXES, audio_files  # noqa: F401
from ser.audio.stream import AudioStream, DecodedAudio, decode, load_audio  # noqa: F401
from ser.audio.decoders import check_samples, declared_duration, resample, to_mono  # noqa: F401
