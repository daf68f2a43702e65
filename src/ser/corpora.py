"""What is known about each corpus a model may be trained on: language, speaking style and
licence. Shared by training (model cards) and serving (what the app says a model was trained
on), so it sits beside ``ser.common``, below both."""

from __future__ import annotations

from typing import Iterable

CORPUS_INFO = {
    "ravdess": {"language": "English", "style": "acted", "licence":
                "CC BY-NC-SA 4.0 (non-commercial, share-alike)"},
    "crema-d": {"language": "English", "style": "acted", "licence": "ODbL / DbCL"},
    "tess": {"language": "English", "style": "acted", "licence":
             "CC BY-NC-ND 4.0 (non-commercial)"},
    "emovo": {"language": "Italian", "style": "acted", "licence":
              "research use with acknowledgement"},
    "savee": {"language": "English", "style": "acted", "licence": "see the corpus's own terms"},
    "emodb": {"language": "German", "style": "acted", "licence": "see the corpus's own terms"},
    "nemo": {"language": "Polish", "style": "acted", "licence":
             "CC BY-NC-SA 4.0 (non-commercial, share-alike)"},
    "banglaser": {"language": "Bangla", "style": "acted (non-professional, phones and laptops)",
                  "licence": "as published on Mendeley Data t9h6p943xy"},
    "turev-db": {"language": "Turkish", "style": "acted single words", "licence":
                 "CC BY-NC-ND 4.0 (non-commercial)"},
}


def describe_corpora(corpora: Iterable[str]) -> dict:
    """Languages, styles and licences of the named corpora (unknown corpora say so)."""
    info = {c: CORPUS_INFO.get(c, {"language": "unknown", "style": "unknown",
                                  "licence": "see its source"}) for c in corpora}
    return {"languages": sorted({v["language"] for v in info.values()}),
            "styles": sorted({v["style"] for v in info.values()}),
            "licences": {c: v["licence"] for c, v in info.items()},
            "non_commercial": any("non-commercial" in v["licence"].lower() for v in info.values())}


def styles_phrase(styles: list[str]) -> str:
    """How the training corpora were spoken, in words: "acted speech (some by non-professionals
    on phones and laptops; some single words)" rather than "acted and acted (…) and acted …"."""
    kinds = sorted({s.split(" ", 1)[0] for s in styles})
    details = sorted({s.split(" ", 1)[1].strip("()") for s in styles if " " in s})
    phrase = f"{' and '.join(kinds)} speech"
    return phrase + (f" (some {'; some '.join(details)})" if details else "")
