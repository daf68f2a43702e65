"""The speech detector's segmenter: utterances are released as soon as nothing can merge
with them (a live stream reports them a pause later, not an utterance later), and releasing
early never leaves two utterances that padding makes touch."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ser.audio.vad import CHUNK, Segmenter, VadConfig


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=400), st.integers(1, 50))
def test_utterances_never_touch_and_pieces_do_not_matter(probs, piece):
    probs = np.asarray(probs, np.float32)
    n_samples = len(probs) * CHUNK
    whole = Segmenter()
    once = whole.push(probs) + whole.finish(n_samples)
    pieces = Segmenter()
    chunked = []
    for i in range(0, len(probs), piece):
        chunked += pieces.push(probs[i : i + piece])
    chunked += pieces.finish(n_samples)
    assert chunked == once
    for (s1, e1), (s2, e2) in zip(once, once[1:]):
        assert 0 <= s1 < e1 < s2 < e2 <= n_samples  # ordered, and padding never makes two touch


def test_an_utterance_is_released_once_nothing_can_merge_with_it():
    speech = np.full(20, 0.9, np.float32)  # 0.64 s of sure speech after 5 quiet chunks
    # The default pause that closes an utterance (0.3 s) is longer than twice the padding
    # (0.2 s): nothing can merge any more, so it comes out as it closes.
    seg = Segmenter(VadConfig())
    assert seg.push(np.concatenate([np.zeros(5, np.float32), speech])) == []  # still speaking
    out = seg.push(np.zeros(10, np.float32))
    assert out == [(5 * CHUNK - 1_600, 25 * CHUNK + 1_600)] and seg.held is None
    # A shorter closing pause: held while padding could still join the next one, released
    # as soon as the pause exceeds twice the padding.
    seg = Segmenter(VadConfig(min_silence_s=0.064, pad_s=0.2))
    seg.push(np.concatenate([np.zeros(5, np.float32), speech]))
    assert seg.push(np.zeros(2, np.float32)) == [] and seg.held is not None
    waited = 0
    while seg.held is not None:
        out = seg.push(np.zeros(1, np.float32))
        waited += 1
    assert len(out) == 1 and (2 + waited) * CHUNK > 2 * 3_200 and waited < 20
