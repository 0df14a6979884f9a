"""Korean class names: all 1,000 ImageNet classes and the 10 garments, aligned by index and recognised by label."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

from vitviz.core import classnames
from vitviz.core.classnames import label_set, localized, table

ROOT = Path(__file__).resolve().parent.parent
HANGUL = re.compile("[\uac00-\ud7a3]")
# sha256 of the 1,000 English labels of google/vit-base-patch16-224's id2label joined by "\n" (the WordNet
# lemmas of the ILSVRC-2012 synsets, as timm's imagenet_synset_to_lemma.txt also lists them)
IMAGENET_SHA256 = "a40d9be82eb4738becd1dd69991b89f87f309975e860a6f3f45395d8c06a7e0d"
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def english(name: str) -> list[str]:
    return [e for e, _ in table(name)]


def test_imagenet_has_all_1000_standard_labels_in_order():
    labels = english("imagenet-1k")
    assert len(labels) == 1000
    assert hashlib.sha256("\n".join(labels).encode()).hexdigest() == IMAGENET_SHA256
    # landmarks a shifted row would move: fish first, dog breeds 151-268, cats 281-285, the two cranes
    known = {0: "tench, Tinca tinca", 1: "goldfish, Carassius auratus", 134: "crane", 151: "Chihuahua",
             268: "Mexican hairless", 281: "tabby, tabby cat", 285: "Egyptian cat", 409: "analog clock",
             517: "crane", 999: "toilet tissue, toilet paper, bathroom tissue"}
    assert {i: labels[i] for i in known} == known
    korean = [k for _, k in table("imagenet-1k")]
    assert (korean[1], korean[2], korean[134], korean[208], korean[285], korean[517]) == (
        "금붕어", "백상아리", "두루미", "래브라도 리트리버", "이집트 고양이", "기중기")


def test_imagenet_labels_match_timms_synset_list_where_installed():
    spec = importlib.util.find_spec("timm")          # located, not imported: its files are plain text
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("timm is not installed")
    info = Path(list(spec.submodule_search_locations)[0]) / "data" / "_info"
    synsets = (info / "imagenet_synsets.txt").read_text().split()
    lemmas = dict(line.split("\t", 1) for line in (info / "imagenet_synset_to_lemma.txt").read_text().splitlines())
    assert english("imagenet-1k") == [lemmas[s] for s in synsets]


@pytest.mark.parametrize("name", ["imagenet-1k", "fashion-mnist"])
def test_every_korean_name_is_hangul_and_not_a_copy_of_the_english(name):
    for i, (en, ko) in enumerate(table(name)):
        synonyms = {s.strip().casefold() for s in en.split(",")}
        assert HANGUL.search(ko), (i, en, ko)
        assert ko.casefold() not in synonyms and ko == ko.strip() and "(" not in ko, (i, en, ko)
    korean = [ko for _, ko in table(name)]
    assert len(set(korean)) == len(korean)          # a class list must not offer two identical choices


def test_tiny_vit_saved_and_loaded_gets_korean_names(tmp_path):
    from transformers import ViTConfig, ViTForImageClassification

    standard = dict(enumerate(english("imagenet-1k")))
    config = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       image_size=32, patch_size=16, num_labels=1000, id2label=standard,
                       label2id={v: k for k, v in standard.items()})
    ViTForImageClassification(config).save_pretrained(tmp_path)
    model = ViTForImageClassification.from_pretrained(tmp_path)     # id2label back through config.json

    assert label_set(model.config.id2label) == "imagenet-1k"
    ko = localized(model.config.id2label, "ko")
    assert ko[285] == "이집트 고양이 (Egyptian cat)"
    assert ko[281] == "얼룩 고양이 (tabby, tabby cat)"
    assert ko[1] == "금붕어 (goldfish, Carassius auratus)"
    assert sorted(ko) == list(range(1000)) and all(HANGUL.search(v) for v in ko.values())
    assert localized(model.config.id2label, "en") == standard


def test_raw_json_keys_and_first_synonyms_are_recognised():
    labels = english("imagenet-1k")
    assert label_set({str(i): v for i, v in enumerate(labels)}) == "imagenet-1k"
    short = {i: v.split(",")[0].replace(" ", "_").upper() for i, v in enumerate(labels)}   # "GREAT_WHITE_SHARK"
    assert label_set(short) == "imagenet-1k"
    assert localized(short, "ko")[2] == "백상아리 (GREAT_WHITE_SHARK)"


def test_other_label_sets_stay_unchanged():
    labels = english("imagenet-1k")
    swapped = dict(enumerate(labels))
    swapped[281], swapped[285] = swapped[285], swapped[281]        # same names, another order: other classes
    generic = {i: f"LABEL_{i}" for i in range(1000)}
    own = {0: "cat", 1: "dog", 2: "cup"}
    for id2label in (swapped, generic, own, dict(enumerate(labels[:999])), {}):
        assert label_set(id2label) is None
        assert localized(id2label, "ko") == id2label
        assert localized(id2label, "en") == id2label
    assert localized({"a": "x"}, "ko") == {"a": "x"}               # keys that are not indices: untouched


def test_fashion_mnist_bundled_model_is_recognised():
    config = json.loads((ROOT / "assets/models/deit-tiny-fashion-mnist/config.json").read_text())
    assert english("fashion-mnist") == FASHION
    assert label_set(config["id2label"]) == "fashion-mnist"
    ko = localized(config["id2label"], "ko")
    assert ko[0] == "티셔츠/윗옷 (T-shirt/top)" and ko[9] == "발목 부츠 (Ankle boot)"
    assert localized(config["id2label"], "en") == dict(enumerate(FASHION))


def test_a_shifted_row_in_the_file_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "x.tsv").write_text("index\tenglish\tkorean\n0\tcat\t고양이\n2\tdog\t개\n", encoding="utf-8")
    monkeypatch.setattr(classnames, "LABELS_DIR", tmp_path)
    monkeypatch.setitem(classnames.FILES, "x", "x.tsv")
    table.cache_clear()
    try:
        with pytest.raises(ValueError, match="expected index 1, got 2"):
            table("x")
    finally:
        table.cache_clear()
    with pytest.raises(ValueError, match="expected a label set"):
        table("nope")
