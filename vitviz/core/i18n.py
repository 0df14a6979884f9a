"""English and Korean words of the library: its figures and tables (axes, legends, headers), the
steps it describes, and the messages of its refusals (``RequestRefused`` and ``ModelUnavailable``
keys). The page's own words (tab names, help texts, control labels) live next to the UI in
ui/strings.py.

``t(key, lang)`` looks a string up; ``say`` also translates fields that are keys themselves.
"""

from __future__ import annotations

from .korean import particles

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "layer": "Layer",
        "head": "Head",
        "qk_queries": "queries",
        "qk_keys": "keys",
        "qk_title": "Layer {layer}, head {head}: queries and keys of {photos} photo(s) ({method})",
        "qk_pca": "PCA",
        "qk_tsne": "t-SNE",
        "qk_by_row": "patch row (top = 0)",
        "qk_by_column": "patch column (left = 0)",
        "qk_by_brightness": "patch brightness",
        "qk_tile": "head {head} · R with brightness {brightness}",
        "qk_tile_r": "R with row {row} · column {column}",
        "err_qk_photos": "At most {limit} photos can be drawn together here ({count} were chosen). Remove some.",
        "err_qk_tsne": "t-SNE of {points} points would take too long here (the limit is {limit} points: fewer photos). Choose fewer photos, or PCA.",
        "low": "low",
        "high": "high",
        "err_not_image": "This file is not an image that can be read. Please upload a JPEG, PNG, WebP or GIF photo.",
        "err_too_small": "The image is too small to analyze ({size}). Please upload a larger photo.",
        "err_too_large": "The image is too large ({size}; the limit is {limit} megapixels). Please upload a smaller photo.",
        "err_size_format": "“{value}” is not a size. Write it as height x width, for example 224x224.",
        "err_size_range": "{value} cannot be used: each side must be between {low} and {high} pixels.",
        "err_size_patch": "{value} does not split into {patch}×{patch} patches. Try {suggestion}.",
        "err_size_not_offered": "{value} is not one of the sizes offered here. Choose one from the list: {offered}.",
        "err_memory": "At {size} this model needs about {need} of memory for one photo; the limit here is {limit}. Choose a smaller size.",
        "err_model_not_offered": "This server offers only the models in the list: {offered}.",
        "model_not_cached": "it is not in this computer's model cache and the Hugging Face Hub cannot be reached.",
        "model_download": "the Hugging Face Hub did not give it (check the name).",
        "model_broken": "it is not a Vision Transformer image model that vitviz can load.",
        "bundled_missing": "the bundled offline model is missing from this copy of vitviz.",
        "shapes": "`{h}×{w}×3` image → `{gh}×{gw} = {np}` patches of `{p}×{p}×3 = {pp}` values → linear projection to `{d}` → + {prefix} prefix token(s) = `{n}` tokens of width `{d}` → {layers} encoder blocks with {heads} heads, attention `({heads}, {n}, {n})` each.",
        "inside_1": "1. image `{h}×{w}×3`, cut into `{gh}×{gw}` patches of `{p}×{p}`",
        "inside_2": "2. each patch flattened: `{np} × {pp}` (one row per patch)",
        "inside_3": "3. linear projection to D: `{np} × {d}`",
        "inside_4": "4. prepend {prefix} prefix token(s) ({names}), add the position embeddings: `{n} × {d}`",
        "inside_5": "5. {layers} encoder blocks (LN → {heads}-head self-attention → + → LN → MLP → +); each attention is `{heads} × {n} × {n}`. [CLS] attention, head mean per layer:",
        "inside_6": "6. head on the final [CLS]: {top}",
        "inside_no_head": "no classifier (self-supervised)",
        "map_raw": "raw attention (last layer)",
        "map_rollout_mean": "rollout (mean)",
        "map_rollout_max": "rollout (max)",
        "map_rollout_min": "rollout (min)",
        "map_chefer": "Chefer generic",
        "map_grad_rollout": "gradient rollout",
        "map_dino": "DINO head mean",
        "map_random": "random",
        "map_legrad": "LeGrad",
        "map_legrad_all": "LeGrad (every layer)",
        "method_chefer": "Chefer et al. 2021 (generic)",
        "method_legrad": "LeGrad (Bousselham et al. 2025)",
        "method_legrad_all": "LeGrad, every layer through the head (vitviz)",
        "method_grad_rollout": "gradient-weighted rollout",
        "ev_map": "map",
        "ev_auc_pos": "positive AUC ↓",
        "ev_auc_neg": "negative AUC ↑",
        "ev_curve_x": "share of pixels removed",
        "ev_curve_y": "probability of the predicted class",
        "ev_curve_pos": "most relevant removed first",
        "ev_curve_neg": "least relevant first",
        "distance_y": "mean attention distance (px)",
        "distance_ref": "image width = {w} px",
        "embedding_short": "emb",
        "norm_patch_median": "patches: median",
        "norm_patch_max": "patches: max",
        "inside_6_distilled": "6. heads on the final [CLS] and [DIST], averaged: {top}",
        "study_x": "training images (log scale; every run sees the same number of images)",
        "study_y": "test accuracy (%)",
        "study_cnn": "CNN (locality, weight sharing)",
        "study_hybrid": "hybrid ViT (CNN stem, 1×1 patches)",
        "study_vit": "ViT (4×4 patches)",
        "study_images": "training images",
        "study_name_cnn": "CNN",
        "study_name_hybrid": "hybrid ViT (CNN stem)",
        "study_name_vit": "ViT",
        "err_labels_many": "Too many labels: at most {limit}, separated by commas or new lines.",
        "err_labels_english": "“{label}” is not written in English letters, and this model reads English only (CLIP and SigLIP). Type the labels in English, or choose SigLIP 2, which reads Korean too.",
        "err_labels_long": "The label “{label}” is too long: at most {limit} characters each.",
        "ev_saco": "SaCo ↑",
        "ev_mprt": "MPRT: Spearman, whole model random ↓",
        "ev_conventions": "Conventions, each as its reference computes it: perturbation curves — {curves}; SaCo — {saco}; MPRT — {mprt}; ROAD — {road}.",
        "ev_pointing": "pointing (% on the object) ↑",
        "ev_fill_mean": "data mean",
        "ev_fill_black": "black",
        "ev_fill_road": "ROAD",
        "err_road_size": "ROAD fills removed pixels from their neighbours by solving a sparse equation for every perturbed copy: at {size} that needs about {need} of memory, and the limit here is {limit} (it would take about {seconds} seconds). Choose another fill or a smaller size.",
        "err_memory_sanity": "The sanity check needs a second copy of the model: about {need} of memory with its maps, and the limit here is {limit}. Choose a smaller size or a smaller model.",
        "sanity_x_short": "randomisation step",
        "sanity_columns": "Each map as the model is randomised from the top: 0 = the trained model, H = head and final norm, {top} … 1 = each block, E = the embeddings (every module random)",
        "sanity_spearman": "Spearman",
        "lens_x": "layer read out (emb = the embeddings, before block 1)",
        "lens_y": "probability",
        "lens_legend": "final top 5",
        "lens_rank": "#{n}",
        "lens_answer": "p({name})",
        "lens_legend_title": "each patch's top class",
        "lens_other": "other classes ({n})",
        "err_model": "The model {model} could not be loaded: {reason} The app keeps working with the other models.",
        "err_internal": "Something went wrong while analyzing this image. The app is still running; try another photo. (Request {request_id}: the server's log has the details.)",
        "err_expired": "This photo's analysis is no longer kept on the server. Please upload the photo again.",
        "camera_too_large": "The camera sent a picture that is too large ({size}; the limit is {limit}). Choose a smaller camera resolution.",
        "heads_title": "What each part adds to the logit of “{name}”",
        "heads_axes": "rows: layers · columns: heads · right: each layer's MLP",
        "heads_mlp": "MLP",
        "heads_against": "against",
        "heads_for": "for",
        "heads_parts": "embeddings {emb} · heads {heads} · MLPs {mlp} · bias {bias}",
        "heads_total": "sum of the parts {total} · the model's own logit {logit}",
        "heads_bias_is": "bias: the output projections' biases and the read-out's own constant",
        "heads_before": "every head on",
        "heads_after": "heads off",
        "heads_rollout_on": "Rollout, every head on",
        "heads_rollout_off": "Rollout, {n} head(s) off",
        "heads_not_affine": "{model} reads its tokens with an attention-pooling head that has an MLP: even with its norms frozen, its score is not a sum over the heads, so there is no exact split of it. Heads can still be switched off.",
        "err_heads_off": "At most {limit} heads can be switched off at once here ({count} were chosen). Remove some from the set.",
    },
    "ko": {
        "layer": "레이어",
        "head": "헤드",
        "qk_queries": "쿼리",
        "qk_keys": "키",
        "qk_title": "레이어 {layer}, 헤드 {head}: 사진 {photos}장의 쿼리와 키 ({method})",
        "qk_pca": "PCA",
        "qk_tsne": "t-SNE",
        "qk_by_row": "패치의 행 (맨 위 = 0)",
        "qk_by_column": "패치의 열 (맨 왼쪽 = 0)",
        "qk_by_brightness": "패치의 밝기",
        "qk_tile": "헤드 {head} · 밝기와의 R {brightness}",
        "qk_tile_r": "행과의 R {row} · 열과의 R {column}",
        "err_qk_photos": "여기서는 사진을 {limit}장까지만 함께 그릴 수 있어요({count}장을 골랐어요). 몇 장을 빼 주세요.",
        "err_qk_tsne": "점 {points}개로 t-SNE를 하면 여기서는 너무 오래 걸려요(점 {limit}개까지 돼요). 사진을 줄이거나 PCA를 고르세요.",
        "low": "낮음",
        "high": "높음",
        "err_not_image": "읽을 수 있는 이미지 파일이 아니에요. JPEG, PNG, WebP, GIF 사진을 올려 주세요.",
        "err_too_small": "이미지가 너무 작아서 분석할 수 없어요({size}). 더 큰 사진을 올려 주세요.",
        "err_too_large": "이미지가 너무 커요({size}, 한도 {limit}메가픽셀). 더 작은 사진을 올려 주세요.",
        "err_size_format": "“{value}”은(는) 크기가 아니에요. 224x224처럼 세로 x 가로로 적어 주세요.",
        "err_size_range": "{value}은(는) 쓸 수 없어요. 각 변은 {low}~{high}픽셀이어야 해요.",
        "err_size_patch": "{value}은(는) {patch}×{patch} 패치로 나누어떨어지지 않아요. {suggestion}을(를) 써 보세요.",
        "err_size_not_offered": "{value}은(는) 이 서버에서 고를 수 있는 크기가 아니에요. 목록에서 고르세요: {offered}.",
        "err_memory": "{size} 크기에서는 사진 한 장에 메모리가 약 {need} 필요한데, 이 서버의 한도는 {limit}이에요(예요). 더 작은 크기를 고르세요.",
        "err_model_not_offered": "이 서버에서는 목록에 있는 모델만 쓸 수 있어요: {offered}.",
        "model_not_cached": "이 컴퓨터의 모델 캐시에 없고 Hugging Face Hub에도 연결할 수 없어요.",
        "model_download": "Hugging Face Hub에서 받지 못했어요(이름을 확인하세요).",
        "model_broken": "vitviz가 불러올 수 있는 비전 트랜스포머 이미지 모델이 아니에요.",
        "bundled_missing": "이 vitviz에는 내장 오프라인 모델이 없어요.",
        "shapes": "`{h}×{w}×3` 이미지 → `{p}×{p}×3 = {pp}`개 값으로 된 패치 `{gh}×{gw} = {np}`개 → `{d}`차원으로 선형 투영 → 접두 토큰 {prefix}개를 더해 너비 `{d}`인 토큰 `{n}`개 → 헤드 {heads}개짜리 인코더 블록 {layers}개, 블록마다 어텐션 `({heads}, {n}, {n})`.",
        "inside_1": "1. 이미지 `{h}×{w}×3`을(를) `{p}×{p}` 패치 `{gh}×{gw}`개로 자르기",
        "inside_2": "2. 패치마다 한 줄로 펼치기: `{np} × {pp}` (한 행이 패치 하나)",
        "inside_3": "3. D차원으로 선형 투영: `{np} × {d}`",
        "inside_4": "4. 접두 토큰 {prefix}개를 앞에 붙이고({names}) 위치 임베딩 더하기: `{n} × {d}`",
        "inside_5": "5. 인코더 블록 {layers}개 (LN → 헤드 {heads}개 셀프 어텐션 → + → LN → MLP → +); 어텐션은 블록마다 `{heads} × {n} × {n}`. 레이어별 [CLS] 어텐션(헤드 평균):",
        "inside_6": "6. 마지막 [CLS]에 붙은 분류 헤드: {top}",
        "inside_no_head": "분류기 없음 (자기 지도 학습)",
        "map_raw": "원시 어텐션(마지막 레이어)",
        "map_rollout_mean": "롤아웃(평균)",
        "map_rollout_max": "롤아웃(최대)",
        "map_rollout_min": "롤아웃(최소)",
        "map_chefer": "Chefer(범용)",
        "map_grad_rollout": "기울기 롤아웃",
        "map_dino": "DINO 헤드 평균",
        "map_random": "무작위",
        "map_legrad": "LeGrad",
        "map_legrad_all": "LeGrad(모든 레이어)",
        "method_chefer": "Chefer 외 2021 (범용 방법)",
        "method_legrad": "LeGrad (Bousselham 외 2025)",
        "method_legrad_all": "LeGrad, 모든 레이어를 헤드로 읽음 (vitviz)",
        "method_grad_rollout": "기울기 가중 롤아웃",
        "ev_map": "맵",
        "ev_auc_pos": "양의 섭동 AUC ↓",
        "ev_auc_neg": "음의 섭동 AUC ↑",
        "ev_curve_x": "지운 픽셀 비율",
        "ev_curve_y": "예측 클래스의 확률",
        "ev_curve_pos": "중요한 픽셀부터 지움",
        "ev_curve_neg": "덜 중요한 픽셀부터 지움",
        "distance_y": "평균 어텐션 거리(픽셀)",
        "distance_ref": "이미지 너비 = {w}픽셀",
        "embedding_short": "임베딩",
        "norm_patch_median": "패치: 중앙값",
        "norm_patch_max": "패치: 최대",
        "inside_6_distilled": "6. 마지막 [CLS]와 [DIST]에 붙은 두 헤드의 평균: {top}",
        "study_x": "학습 이미지 수 (로그 척도, 모든 실행이 같은 수의 이미지를 봄)",
        "study_y": "테스트 정확도 (%)",
        "study_cnn": "CNN (지역성, 가중치 공유)",
        "study_hybrid": "하이브리드 ViT (CNN 앞단, 1×1 패치)",
        "study_vit": "ViT (4×4 패치)",
        "study_images": "학습 이미지 수",
        "study_name_cnn": "CNN",
        "study_name_hybrid": "하이브리드 ViT (CNN 앞단)",
        "study_name_vit": "ViT",
        "err_labels_many": "낱말이 너무 많아요. 쉼표나 줄 바꿈으로 나누어 {limit}개까지 쓸 수 있어요.",
        "err_labels_english": "“{label}”은(는) 영어 알파벳으로 적은 낱말이 아니에요. 이 모델(CLIP, SigLIP)은 영어만 읽어요. 낱말을 영어로 적거나, 한국어도 읽는 SigLIP 2을(를) 골라 주세요.",
        "err_labels_long": "“{label}” 낱말이 너무 길어요. 하나에 {limit}자까지 쓸 수 있어요.",
        "ev_saco": "SaCo ↑",
        "ev_mprt": "MPRT: 모델 전체를 무작위로 바꾼 뒤의 스피어먼 ↓",
        "ev_conventions": "계산 규칙(각 측정은 원래 논문의 코드와 같은 방식이에요): 섭동 곡선 — {curves}, SaCo — {saco}, MPRT — {mprt}, ROAD — {road}.",
        "ev_pointing": "가리키기 (물체 위에 있는 %) ↑",
        "ev_fill_mean": "데이터 평균",
        "ev_fill_black": "검은색",
        "ev_fill_road": "ROAD",
        "err_road_size": "ROAD는 지운 픽셀을 주변 픽셀로 메우려고, 픽셀을 지운 사본마다 희소 방정식을 풀어요. {size} 크기에서는 메모리가 약 {need} 드는데, 이 서버의 한도는 {limit}이에요(예요)(시간은 약 {seconds}초 걸려요). 다른 채우기 방법이나 더 작은 크기를 고르세요.",
        "err_memory_sanity": "건전성 검사에는 모델 사본이 하나 더 필요해요. 맵까지 합치면 메모리가 약 {need} 드는데, 이 서버의 한도는 {limit}이에요(예요). 더 작은 크기나 더 작은 모델을 고르세요.",
        "sanity_x_short": "무작위화 단계",
        "sanity_columns": "모델을 위에서부터 무작위로 바꿀 때의 맵: 0 = 학습된 모델, H = 헤드와 마지막 정규화, {top} … 1 = 각 블록, E = 임베딩(모든 모듈이 무작위)",
        "sanity_spearman": "스피어먼",
        "lens_x": "읽어 본 레이어 (임베딩 = 첫 블록에 들어가기 전)",
        "lens_y": "확률",
        "lens_legend": "마지막 레이어의 상위 5개",
        "lens_rank": "{n}위",
        "lens_answer": "p({name})",
        "lens_legend_title": "패치마다 가장 높은 클래스",
        "lens_other": "그 밖의 클래스 ({n})",
        "err_model": "{model} 모델을 불러오지 못했어요: {reason} 다른 모델은 계속 쓸 수 있어요.",
        "err_internal": "이미지를 분석하다가 문제가 생겼어요. 앱은 계속 돌아가니 다른 사진으로 해 보세요. (요청 {request_id}: 자세한 내용은 서버 로그에 있어요.)",
        "err_expired": "이 사진의 분석 결과가 이제 서버에 남아 있지 않아요. 사진을 다시 올려 주세요.",
        "camera_too_large": "카메라가 보낸 사진이 너무 커요({size}, 한도 {limit}). 카메라 해상도를 낮춰 주세요.",
        "heads_title": "“{name}” 로짓에 각 부분이 더한 값",
        "heads_axes": "행: 레이어 · 열: 헤드 · 오른쪽: 레이어마다의 MLP",
        "heads_mlp": "MLP",
        "heads_against": "반대쪽",
        "heads_for": "클래스 쪽",
        "heads_parts": "임베딩 {emb} · 헤드 {heads} · MLP {mlp} · 편향 {bias}",
        "heads_total": "부분의 합 {total} · 모델이 낸 로짓 {logit}",
        "heads_bias_is": "편향: 출력 투영의 편향과 읽기 헤드 자체의 상수",
        "heads_before": "모든 헤드 켬",
        "heads_after": "헤드 끔",
        "heads_rollout_on": "롤아웃, 모든 헤드 켬",
        "heads_rollout_off": "롤아웃, 헤드 {n}개 끔",
        "heads_not_affine": "{model} 모델은 MLP가 들어 있는 어텐션 풀링 헤드로 토큰을 읽어요. 정규화를 고정해도 점수가 헤드들의 합이 되지 않아서 정확하게 나눌 수 없어요. 헤드를 끄는 실험은 할 수 있어요.",
        "err_heads_off": "여기서는 한 번에 헤드를 {limit}개까지만 끌 수 있어요({count}개를 골랐어요). 몇 개를 빼 주세요.",
    },
}


def lang_of(code: str | None) -> str:
    """'ko-KR' -> 'ko'; anything unknown -> 'en'."""
    base = (code or "en").split(",")[0].split("-")[0].split("_")[0].strip().lower()
    return base if base in ("en", "ko") else "en"


class Strings:
    """Lookups in tables of {lang: {key: text}}; a key missing in a language falls back to English, a
    key missing here to `fallback` (the page's words fall back to the library's)."""

    def __init__(self, tables: dict[str, dict[str, str]], fallback: "Strings | None" = None):
        self.tables = tables
        self.fallback = fallback

    def has(self, key: str, lang: str = "en") -> bool:
        """Whether `key` has a text in `lang` (here or in the fallback)."""
        return (key in self.tables.get(lang_of(lang), {})
                or (self.fallback is not None and self.fallback.has(key, lang)))

    def text(self, key: str, lang: str = "en") -> str:
        """The unformatted text of `key` in `lang` (KeyError where no table has it)."""
        lang = lang_of(lang)
        if key in self.tables["en"]:
            return self.tables.get(lang, {}).get(key, self.tables["en"][key])
        if self.fallback is None:
            raise KeyError(key)
        return self.fallback.text(key, lang)

    def t(self, key: str, lang: str = "en", **fmt) -> str:
        """The text of `key` in `lang`, its fields filled; in Korean each particle written as
        "을(를)" after a field takes the form the filled-in word needs (vitviz.core.korean)."""
        text = self.text(key, lang)
        text = text.format(**fmt) if fmt else text
        return particles(text) if lang_of(lang) == "ko" else text

    def say(self, key: str, lang: str = "en", **fields) -> str:
        """A message whose fields may be messages too: a field named ``x_key`` is translated and
        passed as ``x`` (err_model's reason is model_not_cached, model_download, ...)."""
        for name in [f for f in fields if f.endswith("_key")]:
            fields[name[:-4]] = self.t(fields.pop(name), lang)
        return self.t(key, lang, **fields)


LIBRARY = Strings(STRINGS)
t = LIBRARY.t
say = LIBRARY.say
has = LIBRARY.has


def add(tables: dict[str, dict[str, str]]) -> None:
    """Add strings of something registered from outside the library (a method's names); ValueError
    for a key the library has already, so nothing is redefined. An English text is required."""
    clash = [k for lang in tables for k in tables[lang] if k in STRINGS.get(lang, {})]
    if clash:
        raise ValueError(f"these strings exist already: {sorted(set(clash))}")
    if set(tables.get("en", {})) < set().union(*(tables[lang] for lang in tables)):
        raise ValueError("every key needs an English text")
    for lang, table in tables.items():
        STRINGS.setdefault(lang, {}).update(table)


def remove(tables: dict[str, dict[str, str]]) -> None:
    for lang, table in tables.items():
        for key in table:
            STRINGS.get(lang, {}).pop(key, None)
