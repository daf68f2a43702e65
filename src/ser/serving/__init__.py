"""Serving: a model bundle read and checked (``bundle``), its classifier on ONNX
Runtime (``classifier``), :class:`~ser.serving.inference.EmotionRecognizer` (``inference``)
and many files at once (``batch``: a local process pool or Ray Data, a resume journal,
output formats). Never imports ``ser.training`` and never PyTorch.
"""
