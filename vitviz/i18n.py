"""English and Korean strings for every label, help text and message.

The app hands STRINGS to gr.I18n for static labels (the browser's language picks),
and uses ``t(key, lang)`` for text it builds at run time (messages, captions).
"""

from __future__ import annotations

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "# vitviz — what a Vision Transformer does with your photo",
        "intro": "Upload a photo (or click an example). The ViT cuts it into patches (\"an image is worth 16×16 words\"), "
                 "reads them as a sequence of tokens and predicts. The tabs show where it looks.",
        "image": "Photo", "model": "Model", "language": "Language", "analyse": "Analyse",
        "predictions": "Top-5 predictions", "status": "Status", "examples": "Examples",
        "tab_patches": "Patches & tokens", "tab_rollout": "Attention rollout", "tab_posemb": "Position embeddings",
        "tab_raw": "Raw attention", "tab_class": "Class-specific", "tab_dino": "DINO heads",
        "tab_distance": "Attention distance", "tab_filters": "Embedding filters", "tab_faith": "Faithfulness",
        "tab_click": "Click a patch", "tab_inside": "Inside the ViT",
        "patch_grid": "What the model saw, cut into patches", "tokens": "The token sequence",
        "fusion": "Head fusion", "discard": "Discard ratio (lowest attentions per row; [CLS] is never dropped)",
        "opacity": "Overlay opacity", "start_layer": "Start layer", "rollout_seen": "Rollout over the model's input",
        "rollout_photo": "Rollout over your photo", "on_photo": "Over your photo", "posemb_map": "Cosine similarity of position embeddings",
        "posemb_help": "Tile (row, column) shows how similar that patch's position embedding is to every other patch's "
                       "(yellow = similar, scale −1…1). A grid pattern means the model learned 2-D layout from data: "
                       "nothing in a ViT tells it which patches are neighbours.",
        "layer": "Layer", "head": "Head", "shared_scale": "One colour scale for all maps", "raw_grid": "[CLS] attention: layers × heads",
        "raw_selected": "Selected layer and head", "raw_mean": "Head mean per layer",
        "target_class": "Class to explain", "method": "Method", "class_map": "Class-specific map",
        "dino_mass": "Keep the tokens holding this share of the attention mass", "dino_maps": "Last-layer heads, [CLS] attention",
        "dino_masks": "Thresholded heads", "distance_plot": "Mean attention distance per head",
        "filters": "Principal components of the patch projection", "faith_plot": "Deletion and insertion curves",
        "faith_table": "Area under the curve",
        "click_help": "Click a patch on the photo: see where it looks at the chosen layer and head, its rollout and its "
                      "position-embedding similarity. No model run is needed.",
        "click_image": "Click a patch", "patch": "Clicked patch (index)", "query_att": "Attention of the clicked patch", "query_mean": "Head mean",
        "query_rollout": "Rollout from the clicked patch", "query_posemb": "Position-embedding similarity of the clicked patch",
        "inside": "Step by step through the model", "resolution": "Input size (pixels; larger interpolates the position embeddings)",
        "download": "Download PNG",
        "mae_help": "A masked autoencoder hides 75% of the patches and reconstructs them from the rest.",
        "mae_masked": "Input with 75% of patches masked", "mae_recon": "Reconstruction",
        "mae_pasted": "Reconstruction + visible patches",
        "low": "low", "high": "high",
        # run-time messages
        "ok": "Analysed with **{model}** on {device} ({dtype}) in {seconds:.2f} s.",
        "active_model": "Active model: **{model}** · {device} · {dtype}",
        "compiled_ready": "compiled", "compiled_compiling": "compiling in the background",
        "fallback": "⚠️ {reason}",
        "err_not_image": "This file is not an image that can be read. Please upload a JPEG, PNG, WebP or GIF photo.",
        "err_too_small": "The image is too small to analyse ({size}). Please upload a larger photo.",
        "err_too_large": "The image is too large ({size}). Please upload a smaller photo.",
        "err_no_image": "Upload a photo or click an example first.",
        "err_model": "The model {model} could not be loaded: {reason} The app keeps working with the other models.",
        "err_internal": "Something went wrong while analysing this image ({error}). The app is still running; try another photo.",
        "no_classifier": "{model} has no classifier (self-supervised): attention views only.",
        "no_posemb": "{model} has no absolute position embeddings: {reason}",
        "shapes": "`{h}×{w}×3` image → `{gh}×{gw} = {np}` patches of `{p}×{p}×3 = {pp}` values → linear projection "
                  "to `{d}` → + {prefix} prefix token(s) = `{n}` tokens of width `{d}` → {layers} encoder blocks with "
                  "{heads} heads, attention `({heads}, {n}, {n})` each.",
        "inside_1": "1. image `{h}×{w}×3`, cut into `{gh}×{gw}` patches of `{p}×{p}`",
        "inside_2": "2. each patch flattened: `{np} × {pp}` (one row per patch)",
        "inside_3": "3. linear projection to D: `{np} × {d}`",
        "inside_4": "4. prepend {prefix} prefix token(s) ({names}), add the position embeddings: `{n} × {d}`",
        "inside_5": "5. {layers} encoder blocks (LN → {heads}-head self-attention → + → LN → MLP → +); each attention is "
                    "`{heads} × {n} × {n}`. [CLS] attention, head mean per layer:",
        "inside_6": "6. head on the final [CLS]: {top}",
        "inside_no_head": "no classifier (self-supervised)",
        "mae_only": "This view needs a masked autoencoder (facebook/vit-mae-base); {model} is not one.",
    },
    "ko": {
        "title": "# vitviz — 비전 트랜스포머는 사진을 어떻게 볼까?",
        "intro": "사진을 올리거나 예시를 누르세요. ViT는 사진을 패치로 자르고(\"이미지는 16×16 단어의 가치가 있다\"), "
                 "토큰 시퀀스로 읽어 예측합니다. 각 탭에서 모델이 어디를 보는지 확인할 수 있습니다.",
        "image": "사진", "model": "모델", "language": "언어", "analyse": "분석",
        "predictions": "상위 5개 예측", "status": "상태", "examples": "예시",
        "tab_patches": "패치와 토큰", "tab_rollout": "어텐션 롤아웃", "tab_posemb": "위치 임베딩",
        "tab_raw": "원시 어텐션", "tab_class": "클래스별 설명", "tab_dino": "DINO 헤드",
        "tab_distance": "어텐션 거리", "tab_filters": "임베딩 필터", "tab_faith": "충실도",
        "tab_click": "패치 클릭", "tab_inside": "ViT 내부",
        "patch_grid": "모델이 본 이미지와 패치 격자", "tokens": "토큰 시퀀스",
        "fusion": "헤드 결합 방식", "discard": "버림 비율 (행마다 가장 낮은 어텐션; [CLS]는 버리지 않음)",
        "opacity": "겹침 불투명도", "start_layer": "시작 레이어", "rollout_seen": "모델 입력 위의 롤아웃",
        "rollout_photo": "원본 사진 위의 롤아웃", "on_photo": "원본 사진 위", "posemb_map": "위치 임베딩의 코사인 유사도",
        "posemb_help": "(행, 열) 타일은 그 패치의 위치 임베딩이 다른 모든 패치와 얼마나 비슷한지 보여 줍니다 "
                       "(노랑 = 비슷함, 범위 −1…1). 격자 무늬는 모델이 데이터로부터 2차원 배치를 배웠다는 뜻입니다. "
                       "ViT에는 어떤 패치가 이웃인지 알려 주는 장치가 없습니다.",
        "layer": "레이어", "head": "헤드", "shared_scale": "모든 맵에 같은 색 범위 사용", "raw_grid": "[CLS] 어텐션: 레이어 × 헤드",
        "raw_selected": "선택한 레이어와 헤드", "raw_mean": "레이어별 헤드 평균",
        "target_class": "설명할 클래스", "method": "방법", "class_map": "클래스별 맵",
        "dino_mass": "어텐션 질량의 이 비율을 차지하는 토큰만 남기기", "dino_maps": "마지막 레이어 헤드의 [CLS] 어텐션",
        "dino_masks": "임계값을 적용한 헤드", "distance_plot": "헤드별 평균 어텐션 거리",
        "filters": "패치 투영 가중치의 주성분", "faith_plot": "삭제·삽입 곡선", "faith_table": "곡선 아래 면적",
        "click_help": "사진에서 패치를 클릭하세요. 선택한 레이어·헤드에서 그 패치가 어디를 보는지, 롤아웃, "
                      "위치 임베딩 유사도를 보여 줍니다. 모델을 다시 실행하지 않습니다.",
        "click_image": "패치를 클릭하세요", "patch": "클릭한 패치 (번호)", "query_att": "클릭한 패치의 어텐션", "query_mean": "헤드 평균",
        "query_rollout": "클릭한 패치의 롤아웃", "query_posemb": "클릭한 패치의 위치 임베딩 유사도",
        "inside": "모델 안을 한 단계씩", "resolution": "입력 크기 (픽셀, 크게 하면 위치 임베딩을 보간)",
        "download": "PNG 내려받기",
        "mae_help": "마스크드 오토인코더는 패치의 75%를 가리고 나머지로부터 복원합니다.",
        "mae_masked": "패치 75%를 가린 입력", "mae_recon": "복원 결과", "mae_pasted": "복원 결과 + 보이는 패치",
        "low": "낮음", "high": "높음",
        "ok": "**{model}** 모델로 {device}({dtype})에서 {seconds:.2f}초 만에 분석했습니다.",
        "active_model": "사용 중인 모델: **{model}** · {device} · {dtype}",
        "compiled_ready": "컴파일됨", "compiled_compiling": "백그라운드에서 컴파일 중",
        "fallback": "⚠️ {reason}",
        "err_not_image": "읽을 수 있는 이미지 파일이 아닙니다. JPEG, PNG, WebP, GIF 사진을 올려 주세요.",
        "err_too_small": "이미지가 너무 작아 분석할 수 없습니다({size}). 더 큰 사진을 올려 주세요.",
        "err_too_large": "이미지가 너무 큽니다({size}). 더 작은 사진을 올려 주세요.",
        "err_no_image": "먼저 사진을 올리거나 예시를 누르세요.",
        "err_model": "{model} 모델을 불러오지 못했습니다: {reason} 다른 모델로는 계속 사용할 수 있습니다.",
        "err_internal": "이미지를 분석하는 중에 문제가 생겼습니다({error}). 앱은 계속 동작하니 다른 사진으로 시도해 보세요.",
        "no_classifier": "{model} 모델은 분류기가 없습니다(자기 지도 학습). 어텐션 보기만 제공합니다.",
        "no_posemb": "{model} 모델에는 절대 위치 임베딩이 없습니다: {reason}",
        "shapes": "`{h}×{w}×3` 이미지 → `{p}×{p}×3 = {pp}`개 값으로 된 패치 `{gh}×{gw} = {np}`개 → `{d}`차원으로 "
                  "선형 투영 → 접두 토큰 {prefix}개를 더해 너비 `{d}`인 토큰 `{n}`개 → 헤드 {heads}개짜리 인코더 블록 "
                  "{layers}개, 블록마다 어텐션 `({heads}, {n}, {n})`.",
        "inside_1": "1. 이미지 `{h}×{w}×3`를 `{p}×{p}` 패치 `{gh}×{gw}`개로 자르기",
        "inside_2": "2. 패치마다 한 줄로 펼치기: `{np} × {pp}` (한 행이 패치 하나)",
        "inside_3": "3. D차원으로 선형 투영: `{np} × {d}`",
        "inside_4": "4. 접두 토큰 {prefix}개({names})를 붙이고 위치 임베딩 더하기: `{n} × {d}`",
        "inside_5": "5. 인코더 블록 {layers}개 (LN → 헤드 {heads}개 셀프 어텐션 → + → LN → MLP → +); 어텐션은 블록마다 "
                    "`{heads} × {n} × {n}`. 레이어별 [CLS] 어텐션(헤드 평균):",
        "inside_6": "6. 마지막 [CLS]에 붙은 분류 헤드: {top}",
        "inside_no_head": "분류기 없음 (자기 지도 학습)",
        "mae_only": "이 보기는 마스크드 오토인코더(facebook/vit-mae-base)가 필요합니다. {model} 모델은 해당하지 않습니다.",
    },
}

LANGS = tuple(STRINGS)


def lang_of(code: str | None) -> str:
    """'ko-KR' -> 'ko'; anything unknown -> 'en'."""
    base = (code or "en").split(",")[0].split("-")[0].split("_")[0].strip().lower()
    return base if base in STRINGS else "en"


def t(key: str, lang: str = "en", **fmt) -> str:
    table = STRINGS[lang_of(lang)]
    text = table.get(key, STRINGS["en"][key])
    return text.format(**fmt) if fmt else text
