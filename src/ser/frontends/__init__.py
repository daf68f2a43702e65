"""Front ends: where a clip or utterance sits in the model's window (``windows``),
and what turns a placed window into model inputs: hand-made features (``dsp``, ``features``)
or the Whisper-base encoder's pooled states (``encoders``, ``whisper_onnx``); ``registry``
names them. No PyTorch: everything here runs in a light install.
"""
