"""ser — speech emotion recognition."""

from ser.common import EMOTIONS, __version__

__all__ = ["EMOTIONS", "EmotionRecognizer", "Prediction", "__version__"]


def __getattr__(name: str):
    # Lazy: `import ser` stays cheap; the recognizer pulls in ONNX Runtime only when used.
    if name in ("EmotionRecognizer", "Prediction"):
        from ser.serving import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'ser' has no attribute {name!r}")
