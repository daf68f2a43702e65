"""Audio errors and input limits: every failure to read audio is an :class:`AudioError`
subclass with a message meant for a person, never a raw library traceback."""

from __future__ import annotations

import os
from typing import BinaryIO, Union

from ser.common import SerError

AudioSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]

#: Default lower bound on usable audio: the voice activity detector's shortest speech (0.1 s);
#: spoken digits trimmed to the word last from 0.14 s (FSDD), and are analysed.
DEFAULT_MIN_DURATION_S = 0.1
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
