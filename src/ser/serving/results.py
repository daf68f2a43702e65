"""What a prediction is: :class:`Prediction` and its :class:`Segment` objects, the summary of
a recording, and the JSON contract every interface returns (``PREDICTION_FIELDS``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ser.common import NO_SPEECH


@dataclass
class Segment:
    """One analysed stretch: the clip, or an utterance (piece) of a recording."""

    start_s: float
    end_s: float
    emotion: str
    confidence: float
    probabilities: dict[str, float] | None = None

    def to_dict(self) -> dict:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "emotion": self.emotion, "confidence": round(self.confidence, 4)}


#: A recording is named after one emotion when that emotion is the top one of at least this
#: share of its speaking time; below, it is "mixed". Chosen on recordings built from the clips
#: of speakers the model never heard (out-of-fold answers): docs/results.md, "Summary of a
#: recording" — at 0.7 a speaker angry the whole time was often called mixed.
DOMINANT_SHARE = 0.6
MIXED = "mixed"


@dataclass
class Prediction:
    emotion: str  # one of the labels, or NO_SPEECH
    confidence: float
    probabilities: dict[str, float]
    duration_s: float
    segments: list[Segment] = field(default_factory=list)
    path: str | None = None
    uncertain: bool = False  # confidence below the bundle's threshold: more likely wrong
    speech_s: float = 0.0  # seconds analysed as speech
    warnings: list[str] = field(default_factory=list)  # "truncated": the file ended early
    model: str | None = None  # the model that answered: its name and exact version
    model_version: str | None = None
    #: Utterances of the session this answer was adapted over (0: not adapted): a recording's
    #: own, or those of every file given the same speaker.
    adapted_utterances: int = 0
    session: object | None = field(default=None, repr=False, compare=False)  # serving.classifier.Session

    @property
    def has_speech(self) -> bool:
        return self.emotion != NO_SPEECH

    @property
    def emotion_shares(self) -> dict[str, float]:
        """Share of the speaking time whose segment's top emotion is each label."""
        total = sum(s.end_s - s.start_s for s in self.segments) or 1.0
        shares = {label: 0.0 for label in self.probabilities}
        for s in self.segments:
            shares[s.emotion] = shares.get(s.emotion, 0.0) + (s.end_s - s.start_s) / total
        return shares if self.segments else {}

    @property
    def summary(self) -> str:
        """What a person should read first: the emotion, ``"mixed"`` for a recording in which
        no emotion has ``DOMINANT_SHARE`` of the speaking time, or ``"no_speech"``."""
        if not self.has_speech or len(self.segments) <= 1:
            return self.emotion
        shares = self.emotion_shares
        top = max(shares, key=shares.get)
        return top if shares[top] >= DOMINANT_SHARE else MIXED

    @property
    def summary_share(self) -> float:
        """The share of speaking time of the summary's emotion (of the largest one if mixed)."""
        if not self.has_speech:
            return 0.0
        return max(self.emotion_shares.values()) if len(self.segments) > 1 else 1.0

    def to_dict(self) -> dict:
        """The JSON Lines contract of ``ser predict`` (and of the HTTP API)."""
        return {
            "path": self.path,
            "emotion": self.emotion,
            "confidence": round(self.confidence, 4),
            "uncertain": self.uncertain,
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "duration_s": round(self.duration_s, 3),
            "speech_s": round(self.speech_s, 3),
            "emotion_shares": {k: round(v, 4) for k, v in self.emotion_shares.items()},
            "segments": [s.to_dict() for s in self.segments],
            "warnings": list(self.warnings),
            "summary": self.summary,
            "summary_share": round(self.summary_share, 4),
            "adapted": self.adapted_utterances > 0,
            "adapted_utterances": self.adapted_utterances,
            "model": self.model,
            "model_version": self.model_version,
        }


#: The keys of a result object, in order: ``ser predict``'s JSON/JSONL/CSV and the HTTP API.
PREDICTION_FIELDS = tuple(Prediction("no_speech", 0.0, {}, 0.0).to_dict())
