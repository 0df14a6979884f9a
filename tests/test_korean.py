"""Korean particles after run-time words (vitviz.core.korean), checked against readings a Korean
reader gives, and the one politeness level of the page's Korean."""

import pytest

from vitviz.core.korean import final_sound, particles


@pytest.mark.parametrize("written, read", [
    ("사진을(를)", "사진을"), ("모델을(를)", "모델을"), ("사과을(를)", "사과를"), ("레이어은(는)", "레이어는"),
    ("헤드이(가)", "헤드가"), ("맵과(와)", "맵과"), ("패치과(와)", "패치와"),
    ("서울으로(로)", "서울로"), ("책으로(로)", "책으로"), ("바다으로(로)", "바다로"),    # ㄹ takes 로 as a vowel does
    ("3을(를)", "3을"), ("2을(를)", "2를"), ("`224×3`을(를)", "`224×3`을"),              # 삼, 이
    ("0이(가)", "0이"), ("1으로(로)", "1로"), ("6이(가)", "6이"), ("9이(가)", "9가"),     # 영, 일, 육, 구
    ("10을(를)", "10을"), ("20은(는)", "20은"), ("300이(가)", "300이"), ("5000과(와)", "5000과"),  # 십 백 천
    ("12,000이(가)", "12,000이"),                                                             # 만
    ("0.5이었(였)어요", "0.5였어요"), ("0.98이었(였)어요", "0.98이었어요"), ("1.0이에요(예요)", "1.0이에요"),
    ("90%이(가)", "90%가"),                                                                   # 퍼센트
    ("CLIP은(는)", "CLIP은"), ("ViT-B/16을(를)", "ViT-B/16을"), ("SigLIP 2은(는)", "SigLIP 2는"),
    ("model이(가)", "model이"), ("head을(를)", "head를"), ("test이에요(예요)", "test예요"), ("dog과(와)", "dog과"),
    ("GPU이(가)", "GPU가"), ("google/vit-base-patch16-224은(는)", "google/vit-base-patch16-224는"),
    ("“고양이”을(를)", "“고양이”를"), ("**굵게**을(를)", "**굵게**를"), ("(개)이(가)", "(개)가"),
])
def test_particles_follow_how_the_word_before_them_is_read(written, read):
    assert particles(written) == read


def test_a_word_of_unknown_reading_keeps_both_forms():
    assert particles("?을(를) 찾았어요") == "?을(를) 찾았어요"
    assert particles("αβγ은(는)") == "αβγ은(는)"
    assert final_sound("") is None


def test_text_without_pairs_is_left_alone():
    text = "괄호(설명) 안의 말과 (를) 하나만 있는 괄호는 그대로예요."
    assert particles(text) == text


def test_messages_in_korean_get_their_particles_settled():
    from vitviz.core.i18n import Strings

    strings = Strings({"en": {"k": "{n} layers"}, "ko": {"k": "{n}개 레이어 중 {which}을(를) 골랐어요"}})
    assert strings.t("k", "ko", n=12, which="3") == "12개 레이어 중 3을 골랐어요"
    assert strings.t("k", "ko", n=12, which="2") == "12개 레이어 중 2를 골랐어요"
    assert strings.t("k", "en", n=12, which="2") == "12 layers"
