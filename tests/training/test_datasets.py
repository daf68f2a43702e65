from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ser import EMOTIONS
from ser.training.datasets import load_csv, load_folder, scan, summarise


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def _one(result, stem):
    return next(r for r in result.records if Path(r.path).stem == stem)


def test_ravdess_naming(tmp_path):
    _touch(tmp_path, "Actor_01/03-01-06-01-02-01-01.wav", "Actor_12/03-01-02-02-01-02-12.flac",
           "Actor_12/03-02-02-02-01-02-12.wav")  # 03-02: song, not speech
    result = scan(tmp_path)
    r = _one(result, "03-01-06-01-02-01-01")
    assert (r.corpus, r.speaker, r.gender, r.label_original, r.label, r.language) == (
        "ravdess", "ravdess:01", "male", "fearful", "fear", "en")
    r = _one(result, "03-01-02-02-01-02-12")
    assert (r.speaker, r.gender, r.label) == ("ravdess:12", "female", "calm")
    assert len(result.records) == 2 and sum(result.skipped.values()) == 1


def test_crema_naming_with_demographics(tmp_path):
    _touch(tmp_path, "AudioWAV/1001_DFA_ANG_XX.ogg", "AudioWAV/1002_IEO_HAP_HI.wav")
    (tmp_path / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
        "1002,21,Female,Caucasian,Not Hispanic\n"
    )
    result = scan(tmp_path)
    r = _one(result, "1001_DFA_ANG_XX")
    assert (r.corpus, r.speaker, r.gender, r.label_original, r.label) == (
        "crema-d", "crema-d:1001", "male", "ANG", "angry")
    assert _one(result, "1002_IEO_HAP_HI").gender == "female"


def test_emovo_naming(tmp_path):
    _touch(tmp_path, "f1/gio-f1-b1.wav", "m2/tri-m2-l3.flac", "m2/sor-m2-n5.wav")
    result = scan(tmp_path)
    r = _one(result, "gio-f1-b1")
    assert (r.corpus, r.language, r.speaker, r.gender, r.label) == (
        "emovo", "it", "emovo:f1", "female", "happy")
    assert _one(result, "tri-m2-l3").label == "sad"
    assert _one(result, "sor-m2-n5").label == "surprise"


def test_tess_naming(tmp_path):
    _touch(tmp_path, "OAF_angry/OAF_back_angry.wav", "YAF_pleasant_surprised/YAF_bar_ps.wav")
    result = scan(tmp_path)
    assert _one(result, "OAF_back_angry").speaker == "tess:OAF"
    r = _one(result, "YAF_bar_ps")
    assert (r.label_original, r.label, r.gender) == ("ps", "surprise", "female")


def test_savee_naming_flat_and_nested(tmp_path):
    _touch(tmp_path, "DC_a01.wav", "JK_sa15.wav", "AudioData/KL/su03.wav")
    result = scan(tmp_path)
    assert _one(result, "DC_a01").label == "angry"
    r = _one(result, "JK_sa15")
    assert (r.speaker, r.label, r.gender) == ("savee:JK", "sad", "male")
    assert _one(result, "su03").speaker == "savee:KL"


def test_emodb_naming_skips_boredom(tmp_path):
    _touch(tmp_path, "wav/03a01Fa.wav", "wav/08b02Wb.wav", "wav/10a04Lc.wav")
    result = scan(tmp_path)
    r = _one(result, "03a01Fa")
    assert (r.corpus, r.language, r.speaker, r.gender, r.label) == (
        "emodb", "de", "emodb:03", "male", "happy")
    assert _one(result, "08b02Wb").label == "angry"
    assert len(result.records) == 2
    assert result.skipped == Counter({"emodb label 'boredom' has no project class": 1})


def test_nemo_banglaser_turev_naming(tmp_path):
    _touch(tmp_path, "nemo/samples/EB0_happiness_12.ogg", "nemo/samples/XY1_surprised_3.wav",
           "banglaser/dataset/bser-03-01-02-01-01-03-16.ogg",
           "banglaser/dataset/bser-01-01-04-02-03-01-15.ogg",
           "turev/Sound Source/Calm/1234_sk_acik.ogg", "turev/Sound Source/Sad/7895_hl_ogul1.ogg")
    result = scan(tmp_path)
    assert not result.skipped
    r = _one(result, "EB0_happiness_12")
    assert (r.corpus, r.language, r.speaker, r.gender, r.label) == (
        "nemo", "pl", "nemo:EB0", "female", "happy")
    assert (_one(result, "XY1_surprised_3").gender, _one(result, "XY1_surprised_3").label) == (
        None, "surprise")  # an actor whose sex is not known here: no guess
    r = _one(result, "bser-03-01-02-01-01-03-16")
    assert (r.corpus, r.language, r.speaker, r.gender, r.label) == (
        "banglaser", "bn", "banglaser:16", "female", "sad")  # code 02 is sad here, calm in RAVDESS
    assert _one(result, "bser-01-01-04-02-03-01-15").label == "surprise"
    r = _one(result, "1234_sk_acik")
    assert (r.corpus, r.language, r.speaker, r.gender, r.label) == (
        "turev-db", "tr", "turev-db:1234", None, "calm")
    assert _one(result, "7895_hl_ogul1").label == "sad"


def test_unknown_names_and_non_audio_are_counted(tmp_path):
    _touch(tmp_path, "misc/hello.wav", "notes.txt")
    result = scan(tmp_path)
    assert not result.records
    assert sum(result.skipped.values()) == 1  # .txt is not an audio file at all


def test_generic_folder_and_csv(tmp_path):
    _touch(tmp_path, "data/Angry/a.wav", "data/joy/b.mp3", "data/boredom/c.wav")
    result = load_folder(tmp_path / "data", corpus="mine")
    assert sorted(r.label for r in result.records) == ["angry", "happy"]
    assert sum(result.skipped.values()) == 1
    (tmp_path / "list.csv").write_text(
        "path,label,speaker\ndata/Angry/a.wav,anger,s1\ndata/joy/b.mp3,happiness,s2\nx.wav,bored,s3\n"
    )
    result = load_csv(tmp_path / "list.csv", corpus="mine")
    assert [r.speaker for r in result.records] == ["mine:s1", "mine:s2"]
    assert Path(result.records[0].path) == tmp_path / "data/Angry/a.wav"
    assert sum(result.skipped.values()) == 1
    (tmp_path / "bad.csv").write_text("file,emotion\n")
    with pytest.raises(ValueError, match="missing column"):
        load_csv(tmp_path / "bad.csv")


def test_shared_corpora_counts(corpora):
    result = scan(corpora)
    summary = summarise(result.records)["corpora"]
    assert summary["ravdess"]["files"] == 1200 and summary["ravdess"]["speakers"] == 20
    assert summary["emovo"]["files"] == 392 and summary["emovo"]["speakers"] == 4
    assert summary["crema-d"]["files"] == 5808 and summary["crema-d"]["speakers"] == 71
    assert summary["ravdess"]["classes"] == {
        "angry": 160, "calm": 160, "disgust": 160, "fear": 160,
        "happy": 160, "neutral": 80, "sad": 160, "surprise": 160,
    }
    assert summary["emovo"]["classes"] == {e: 56 for e in EMOTIONS if e != "calm"}
    assert summary["crema-d"]["classes"] == {
        "angry": 992, "disgust": 992, "fear": 992, "happy": 992, "neutral": 848, "sad": 992,
    }
    assert summary["tess"]["files"] == 2800 and summary["tess"]["speakers"] == 2
    assert summary["tess"]["classes"] == {e: 400 for e in EMOTIONS if e != "calm"}
    assert summary["nemo"] == {"files": 2862, "speakers": 6, "classes": {
        "angry": 479, "fear": 466, "happy": 479, "neutral": 540, "sad": 499, "surprise": 399}}
    assert summary["banglaser"]["files"] == 1106 and summary["banglaser"]["speakers"] == 26
    assert summary["turev-db"]["classes"] == {"angry": 323, "calm": 244, "happy": 193, "sad": 319}
    assert not result.skipped  # including TESS's one clip named OA_ instead of OAF_
    # TurEV-DB's release gives no speaker sex; every other corpus here has it.
    assert all(r.gender in ("male", "female") for r in result.records if r.corpus != "turev-db")


def test_new_corpora_names_agree_with_their_manifests(corpora):
    for folder in ("nemo", "banglaser", "turev-db"):
        by_name = {r.path: (r.label, r.gender) for r in scan(corpora / folder).records}
        by_manifest = {r.path: (r.label, r.gender) for r in load_csv(corpora / folder / "manifest.csv").records}
        assert by_name == by_manifest
