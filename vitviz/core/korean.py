"""Korean particles after text that is only known at run time (a number, a model's name, a label).

A Korean particle has two forms, chosen by whether the word before it ends in a consonant (받침):
"사진을" but "모델를" is wrong, "3을" (삼) but "2를" (이). A string whose placeholder is filled at run
time writes both forms, consonant form first, as Korean text does when the word is unknown:
"{model}은(는)", "`{size}`을(를)", "{value}이었(였)어요". ``particles`` then keeps the form the word
before it needs, read as a Korean reader reads it:

- Hangul: its final consonant (으로/로: ㄹ counts as no consonant, "서울로").
- Digits: the Sino-Korean reading of the number's last figure (영 일 이 삼 사 오 육 칠 팔 구: 0 1 3 6 7 8
  end in a consonant); a whole number ending in zeros ends in 십, 백, 천, 만 or 억, all with one.
- Latin letters, read as English: l, m, n, ng, and b, ck, g, k, p, t after a vowel end in a consonant
  ("model", "CLIP", "ViT", "dog", "block"); other endings do not ("head" 헤드, "test" 테스트, "GPU").
- % reads 퍼센트. Closing quotes, brackets, backticks and Markdown emphasis are skipped.
Anything else keeps both forms, which is still correct Korean.
"""

from __future__ import annotations

import re

# consonant form, vowel form: the pairs a string may write as "을(를)"
PAIRS = (("이었", "였"), ("이에요", "예요"), ("으로", "로"), ("이라", "라"), ("이나", "나"),
         ("은", "는"), ("이", "가"), ("을", "를"), ("과", "와"), ("아", "야"))
_MARK = re.compile("(" + "|".join(rf"{re.escape(c)}\({re.escape(v)}\)" for c, v in PAIRS) + ")")
_SKIP = "`'\"’”)]}*_»」』〉》"
_DIGIT_FINAL = {"0": "ㅇ", "1": "ㄹ", "2": "", "3": "ㅁ", "4": "", "5": "", "6": "ㄱ", "7": "ㄹ", "8": "ㄹ", "9": ""}
_VOWELS = "aeiou"


def particles(text: str) -> str:
    """'모델은(는) 3을(를) CLIP과(와)' -> '모델은 3을 CLIP과': each "consonant(vowel)" pair after a word
    resolved by how that word ends; pairs after a word of unknown reading stay as written."""
    out, last = [], 0
    for m in _MARK.finditer(text):
        consonant, vowel = next((c, v) for c, v in PAIRS if m.group(1) == f"{c}({v})")
        final = final_sound(text[:m.start()])
        if final is None:
            continue
        form = vowel if final == "" or (consonant == "으로" and final == "ㄹ") else consonant
        out += [text[last:m.start()], form]
        last = m.end()
    return "".join(out) + text[last:]


def final_sound(text: str) -> str | None:
    """The final consonant of the last word in text, as read aloud: a jamo ("ㄴ", "ㄹ"...), "" for
    none, None where the reading is unknown."""
    text = text.rstrip(_SKIP)
    if not text:
        return None
    ch = text[-1]
    if "가" <= ch <= "힣":
        final = (ord(ch) - 0xAC00) % 28
        return "" if final == 0 else _FINALS[final]
    if ch.isdigit() and ch.isascii():
        return _number_final(text)
    if ch == "%":
        return ""                                    # 퍼센트
    if ch.isascii() and ch.isalpha():
        return _english_final(re.search(r"[A-Za-z]+$", text).group(0).lower())
    return None


def _number_final(text: str) -> str:
    digits = re.search(r"[0-9][0-9,]*(\.[0-9]+)?$", text).group(0).replace(",", "")
    zeros = len(digits) - len(digits.rstrip("0"))
    if "." in digits or zeros == 0 or zeros == len(digits):
        return _DIGIT_FINAL[digits[-1]]              # the last figure read on its own ("0.5": 영점오)
    return _TENS_FINAL[min(zeros, 8)]                # 20: 이십, 300: 삼백, 1000: 천, 50000: 오만


def _english_final(word: str) -> str:
    if word.endswith("ng"):
        return "ㅇ"
    if word[-1] in "lmn":
        return {"l": "ㄹ", "m": "ㅁ", "n": "ㄴ"}[word[-1]]
    if len(word) >= 2 and word[-1] in "bgkpt" and (word[-2] in _VOWELS or word.endswith("ck")):
        return {"b": "ㅂ", "g": "ㄱ", "k": "ㄱ", "p": "ㅂ", "t": "ㅅ"}[word[-1]]
    return ""


_TENS_FINAL = {1: "ㅂ", 2: "ㄱ", 3: "ㄴ", 4: "ㄴ", 5: "ㄴ", 6: "ㄴ", 7: "ㄴ", 8: "ㄱ"}    # 십 백 천 만 … 억


_FINALS = ("", "ㄱ", "ㄲ", "ㄳ", "ㄴ", "ㄵ", "ㄶ", "ㄷ", "ㄹ", "ㄺ", "ㄻ", "ㄼ", "ㄽ", "ㄾ", "ㄿ", "ㅀ", "ㅁ", "ㅂ",
           "ㅄ", "ㅅ", "ㅆ", "ㅇ", "ㅈ", "ㅊ", "ㅋ", "ㅌ", "ㅍ", "ㅎ")
