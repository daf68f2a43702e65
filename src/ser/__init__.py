"""ser — speech emotion recognition."""

__version__ = "0.1.0"

EMOTIONS = ("angry", "calm", "disgust", "fear", "happy", "neutral", "sad", "surprise")
