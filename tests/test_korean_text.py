"""The Korean text read as one page: one politeness level (해요체, the polite -요 style students are
spoken to in), one word per idea, particles after fields and numbers written in both forms, and
class names a student can tell apart. The page's words are ui/strings.py, the library's (figures,
refusals) vitviz/core/i18n.py, the class names assets/labels/*-ko.tsv."""

from __future__ import annotations

import re

import pytest

from ui.strings import STRINGS as PAGE
from vitviz.core.classnames import table
from vitviz.core.i18n import STRINGS as LIBRARY
from vitviz.core.korean import PAIRS

KOREAN = {**{f"page:{k}": v for k, v in PAGE["ko"].items()},
          **{f"library:{k}": v for k, v in LIBRARY["ko"].items()}}

# -습니다/-ㅂ니다 (합니다, 입니다, 봅니다), -습니까/-ㅂ니까, -(으)십시오: the formal level (하십시오체).
# A syllable ending in ㅂ before 니다/니까 is how -ㅂ니다 is written ("합니다" = 하 + ㅂ니다).
_B_FINAL = "".join(chr(0xAC00 + 28 * i + 17) for i in range(19 * 21))
FORMAL = re.compile(rf"(습니[다까]|[{_B_FINAL}]니[다까]|십시오|시오[.!]?$)")
# the -요 level: 해요, 있어요, 예요, 하세요, 주세요 ... at the end of a sentence or before a bracket
POLITE = re.compile(r"요(?=$|[\s.!?)\]:,·“”\"'*]|\()")


def levels(text: str) -> set[str]:
    """The politeness levels a Korean text speaks in: "formal" (-습니다) and/or "polite" (-요)."""
    return {name for name, pattern in (("formal", FORMAL), ("polite", POLITE)) if pattern.search(text)}


def test_the_level_detector_tells_the_two_levels_apart():
    assert levels("분석했습니다.") == {"formal"} and levels("이 모델입니다") == {"formal"}
    assert levels("다시 시도하십시오.") == {"formal"} and levels("괜찮습니까?") == {"formal"}
    assert levels("분석했어요.") == {"polite"} and levels("사진을 올려 주세요") == {"polite"}
    assert levels("서버가 바쁩니다. 잠시 후 다시 해 보세요.") == {"formal", "polite"}    # a mixed message
    assert levels("발표 모드 (큰 글자)") == set()                                       # a label: no sentence
    assert levels("요청 {request_id}") == set() and levels("필요한 값") == set()


@pytest.mark.parametrize("key", sorted(KOREAN))
def test_every_korean_string_speaks_the_one_polite_level(key):
    """Students are the audience: the page talks to them in -요 throughout, never in -습니다, and never
    switches inside one message."""
    text = KOREAN[key]
    assert "formal" not in levels(text), (key, FORMAL.findall(text), text)


# One idea, one word: the word the page uses, and the ones it must not use for the same idea.
ONE_WORD = {
    "layer is 레이어": re.compile(r"(?<![계고단지])층"),
    "probe is 프로브": re.compile("탐침"),
    "attention/map mass is 양": re.compile("질량"),
    "a CNN stem is the CNN 앞단": re.compile("줄기"),
    "the class-specific map is 클래스별 맵": re.compile(r"클래스 맵"),
    "patches are not people (에게서 is for the living)": re.compile("패치(들)?에게"),
}
# 보기 is the section "See" only (and the verb -어 보기 in 맞혀 보기, 정답 보기); a view is a 화면.
SEE_OK = re.compile(r"(맞혀 보기|정답 보기|\*보기 ·|^보기$)")


@pytest.mark.parametrize("idea", sorted(ONE_WORD))
def test_one_word_per_idea(idea):
    wrong = {k: v for k, v in KOREAN.items() if ONE_WORD[idea].search(v)}
    assert not wrong, (idea, wrong)


def test_boki_is_the_section_see_and_a_view_is_a_hwamyeon():
    assert PAGE["ko"]["sec_see"] == "보기"
    wrong = {k: v for k, v in KOREAN.items() if "보기" in SEE_OK.sub("", v)}
    assert not wrong, wrong


# A field or a number directly before a particle: the particle must be written in both forms
# ("{x}을(를)", "`224×3`을(를)") so that vitviz.core.korean.particles picks the one the word needs.
# Closing quotes, backticks, brackets and emphasis between them are skipped, as particles skips them.
_PARTICLE = "이었|이에요|예요|으로|이라|이나|을|를|이|가|은|는|과|와|였|로|라"
BARE = re.compile(r"(\{[^{}]*\}|[0-9])([`'\"’”)\]*_]*)(" + _PARTICLE + ")")
BOTH = re.compile("|".join(re.escape(f"{c}({v})") for c, v in PAIRS))


def bare_particles(text: str) -> list[str]:
    return ["".join(m.groups()) for m in BARE.finditer(BOTH.sub("◇", text))]


def test_the_particle_check_finds_a_bare_particle():
    assert bare_particles("`{h}×{w}×3`를 자르기") == ["3`를"]
    assert bare_particles("상관계수는 {attention}였어요") == ["{attention}였"]
    assert bare_particles("**{value}**을 더해요") == ["{value}**을"]
    assert bare_particles("SigLIP 2는 한국어를 읽어요") == ["2는"]
    assert bare_particles("{value}을(를) 더하고 {n}이었(였)어요, `3`을(를)") == []
    assert bare_particles("{n}개를 {seconds:.2f}초 만에 20장") == []


@pytest.mark.parametrize("key", sorted(KOREAN))
def test_a_particle_after_a_field_or_a_number_is_written_in_both_forms(key):
    assert not bare_particles(KOREAN[key]), (key, bare_particles(KOREAN[key]))


def test_class_names_are_unique():
    for name in ("imagenet-1k", "fashion-mnist"):
        korean = [ko for _, ko in table(name)]
        assert len(set(korean)) == len(korean), sorted({k for k in korean if korean.count(k) > 1})


def test_class_names_a_native_reader_corrected():
    korean = [ko for _, ko in table("imagenet-1k")]
    assert korean[970] == "높은 산"                  # alp: any high mountain, not the Alps
    assert korean[588] == "뚜껑 달린 바구니"         # hamper
    assert korean[551] == "페이스 파우더"            # face powder: a bare 분 reads as "minute"
    assert korean[658] == "손모아장갑"               # mitten: the word schools use
    assert korean[29] == "아홀로틀"                  # axolotl: 우파루파 is a trade name
    assert korean[322] == "가락지나비"               # ringlet: 뱀눈나비 is the whole group
    # laptop and notebook computer, told apart as their WordNet glosses do (a notebook is "small, compact")
    assert (korean[620], korean[681]) == ("노트북 컴퓨터", "소형 노트북")
    assert korean[590] == "손바닥 컴퓨터"            # hand-held computer: not one more "portable computer"
    assert not {"분", "알프스 산", "벙어리장갑", "우파루파", "뱀눈나비", "뚜껑 바구니"} & set(korean)
