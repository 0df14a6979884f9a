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
        "image": "Photo", "model": "Model", "language": "Language",
        "present": "Presentation mode (projector: larger type, only the view on show)",
        "predictions": "Top-5 predictions", "examples": "Examples",
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
        "layer": "Layer", "head": "Head", "head_mean": "mean of all heads",
        "fusion_mean": "mean", "fusion_max": "max", "fusion_min": "min", "shared_scale": "One colour scale for all maps", "raw_grid": "[CLS] attention: layers × heads",
        "raw_selected": "Selected layer and head", "raw_mean": "Head mean per layer",
        "target_class": "Class to explain", "method": "Method", "class_map": "Class-specific map",
        "dino_mass": "Keep the tokens holding this share of the attention mass", "dino_maps": "Last-layer heads, [CLS] attention", "distance_plot": "Mean attention distance per head",
        "filters": "Principal components of the patch projection", "faith_plot": "Deletion and insertion curves",
        "click_help": "Click a patch on the photo: see where it looks at the chosen layer and head, its rollout and its "
                      "position-embedding similarity. No model run is needed.",
        "click_image": "Click a patch", "patch": "Clicked patch (index)", "query_att": "Attention of the clicked patch", "query_mean": "Head mean",
        "query_rollout": "Rollout from the clicked patch", "query_posemb": "Position-embedding similarity of the clicked patch", "resolution": "Input size (pixels; larger interpolates the position embeddings)",
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
        "err_too_large": "The image is too large ({size}; the limit is {limit} megapixels). Please upload a smaller photo.",
        "err_no_image": "Upload a photo or click an example first.",
        "err_model": "The model {model} could not be loaded: {reason} The app keeps working with the other models.",
        "err_internal": "Something went wrong while analysing this image. The app is still running; try another photo. "
                        "(Request {request_id}: the server's log has the details.)",
        "err_size_format": "“{value}” is not a size. Write it as height x width, for example 224x224.",
        "err_size_range": "{value} cannot be used: each side must be between {low} and {high} pixels.",
        "err_size_patch": "{value} does not split into {patch}×{patch} patches. Try {suggestion}.",
        "err_size_not_offered": "{value} is not one of the sizes offered here. Choose one from the list: {offered}.",
        "err_memory": "At {size} this model needs about {need} of memory for one photo; the limit here is {limit}. "
                      "Choose a smaller size.",
        "err_model_not_offered": "This server offers only the models in the list: {offered}.",
        "err_busy": "The server is busy: {waiting} photos are waiting to be analysed. Please try again in a moment.",
        "err_expired": "This photo's analysis is no longer kept on the server. Please upload the photo again.",
        "model_not_cached": "it is not in this computer's model cache and the Hugging Face Hub cannot be reached.",
        "model_download": "the Hugging Face Hub did not give it (check the name).",
        "model_broken": "it is not a Vision Transformer image model that vitviz can load.",
        "bundled_missing": "the bundled offline model is missing from this copy of vitviz.",
        "using_bundled": "Using the bundled offline model instead.",
        "gpu_fallback": "The GPU quota is used up for now, so this ran on the CPU (slower).",
        "no_classifier": "{model} has no classifier (self-supervised): attention views only.",
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
        "sec_see": "See", "sec_explain": "Explain", "sec_learn": "Learn",
        "tab_mae": "Masked autoencoder", "tab_norms": "Token norms", "tab_bias": "Inductive bias",
        "size_trained": "{size} (trained)",
        "token_query": "Token whose attention is shown",
        "method_chefer": "Chefer et al. 2021 (generic)", "method_grad_rollout": "gradient-weighted rollout",
        "map_raw": "raw attention (last layer)", "map_rollout_mean": "rollout (mean)", "map_rollout_max": "rollout (max)",
        "map_rollout_min": "rollout (min)", "map_chefer": "Chefer generic", "map_grad_rollout": "gradient rollout",
        "map_dino": "DINO head mean", "map_random": "random",
        "faith_help": "How faithful is each map to this model on this photo? Remove the pixels a map calls most "
                      "important first (solid lines: the class probability should fall fast, a lower area is "
                      "better) or least important first (dashed: it should hold, a higher area is better). "
                      "A random map is the baseline.",
        "faith_run": "Measure the maps on this photo",
        "faith_map": "map", "faith_pos": "positive AUC ↓", "faith_neg": "negative AUC ↑",
        "faith_x": "share of pixels removed", "faith_y": "probability of the predicted class",
        "faith_pos_curve": "most relevant removed first", "faith_neg_curve": "least relevant first",
        "distance_y": "mean attention distance (px)", "distance_ref": "image width = {w} px",
        "distance_help": "Each dot is one head: how far (in pixels) its attention reaches on average. Early layers of a "
                         "ViT already hold heads that look across the whole image next to local ones; a CNN's "
                         "receptive field only grows layer by layer.",
        "filters_help": "The patch projection's main directions, drawn as patches: what the first layer looks for.",
        "embedding_short": "emb",
        "norms_help": "How long each token's vector is after every block. Large ViTs trained for long grow a few "
                      "patch tokens with very large norms in the background, which they use as scratch space; their "
                      "attention maps then show bright spots there (Darcet et al., *Vision Transformers Need "
                      "Registers*, ICLR 2024). Register tokens take that role and the spots disappear. Look for "
                      "single tiles far brighter than their neighbours in the later layers.",
        "norm_patch_median": "patches: median", "norm_patch_max": "patches: max",
        "norms_map": "Norm of every patch token, after the embedding and after each block (one colour scale)",
        "fill": "Removed pixels become", "fill_mean": "the data mean (Chefer et al.)",
        "fill_black": "black (Fashion-MNIST's background)",
        "dist_help": "**[DIST]** is DeiT's distillation token (Touvron et al. 2021): a second learned token beside "
                     "[CLS]. During training its head learns to copy a teacher network's answer (here a CNN) while "
                     "[CLS] learns the true labels; the prediction averages both heads. Choose which token's "
                     "attention the maps show.",
        "inside_6_distilled": "6. heads on the final [CLS] and [DIST], averaged: {top}",
        "bias_help": "A CNN is built to see locally: small kernels, the same weights everywhere, neighbours next to each other. A ViT is told none of this — its position embeddings start random and every patch can attend to every other from the first layer — so it has to learn the layout of images from data. The source tutorial says this makes ViTs need more data than CNNs, with hybrids (a CNN stem whose feature map is read as 1×1 patches) in between. vitviz measured it: the three models below were trained on growing subsets of Fashion-MNIST, each seeing the same number of images (`python -m vitviz.study`), and tested on all 10,000 test images.",
        "bias_plot": "Test accuracy vs number of training images",
        "study_x": "training images (log scale; every run sees the same number of images)",
        "study_y": "test accuracy (%)", "study_cnn": "CNN (locality, weight sharing)",
        "study_hybrid": "hybrid ViT (CNN stem, 1×1 patches)", "study_vit": "ViT (4×4 patches)",
        "study_images": "training images", "study_name_cnn": "CNN", "study_name_hybrid": "hybrid ViT (CNN stem)",
        "study_name_vit": "ViT",
        "bias_missing": "The study has not been run in this copy of vitviz: `python -m vitviz.study` writes it.",
        "bias_at": "With **{n}** training images: {parts}.",
        "bias_gap": "CNN minus ViT: **{small}** points with {n0} images, **{large}** points with {n1}.",
        "bias_distilled": "**DeiT closes part of the gap by borrowing the CNN's bias.** The offline model here is a ViT distilled from a CNN that vitviz trained first (Touvron et al. 2021): the CNN teacher reaches {teacher} % on the test set; the student's [CLS] head alone {cls} %, its [DIST] head (trained on the teacher's answers) {dist} %, both averaged {both} %. The [DIST] token is visible in *See · Patches & tokens*, and every attention view can show either token.",
    },
    "ko": {
        "title": "# vitviz — 비전 트랜스포머는 사진을 어떻게 볼까?",
        "intro": "사진을 올리거나 예시를 누르세요. ViT는 사진을 패치로 자르고(\"이미지는 16×16 단어의 가치가 있다\"), "
                 "토큰 시퀀스로 읽어 예측합니다. 각 탭에서 모델이 어디를 보는지 확인할 수 있습니다.",
        "image": "사진", "model": "모델", "language": "언어",
        "present": "발표 모드 (프로젝터: 큰 글자, 보고 있는 화면만)",
        "predictions": "상위 5개 예측", "examples": "예시",
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
        "layer": "레이어", "head": "헤드", "head_mean": "모든 헤드의 평균",
        "fusion_mean": "평균", "fusion_max": "최대", "fusion_min": "최소", "shared_scale": "모든 맵에 같은 색 범위 사용", "raw_grid": "[CLS] 어텐션: 레이어 × 헤드",
        "raw_selected": "선택한 레이어와 헤드", "raw_mean": "레이어별 헤드 평균",
        "target_class": "설명할 클래스", "method": "방법", "class_map": "클래스별 맵",
        "dino_mass": "어텐션 질량의 이 비율을 차지하는 토큰만 남기기", "dino_maps": "마지막 레이어 헤드의 [CLS] 어텐션", "distance_plot": "헤드별 평균 어텐션 거리",
        "filters": "패치 투영 가중치의 주성분", "faith_plot": "삭제·삽입 곡선",
        "click_help": "사진에서 패치를 클릭하세요. 선택한 레이어·헤드에서 그 패치가 어디를 보는지, 롤아웃, "
                      "위치 임베딩 유사도를 보여 줍니다. 모델을 다시 실행하지 않습니다.",
        "click_image": "패치를 클릭하세요", "patch": "클릭한 패치 (번호)", "query_att": "클릭한 패치의 어텐션", "query_mean": "헤드 평균",
        "query_rollout": "클릭한 패치의 롤아웃", "query_posemb": "클릭한 패치의 위치 임베딩 유사도", "resolution": "입력 크기 (픽셀, 크게 하면 위치 임베딩을 보간)",
        "mae_help": "마스크드 오토인코더는 패치의 75%를 가리고 나머지로부터 복원합니다.",
        "mae_masked": "패치 75%를 가린 입력", "mae_recon": "복원 결과", "mae_pasted": "복원 결과 + 보이는 패치",
        "low": "낮음", "high": "높음",
        "ok": "**{model}** 모델로 {device}({dtype})에서 {seconds:.2f}초 만에 분석했습니다.",
        "active_model": "사용 중인 모델: **{model}** · {device} · {dtype}",
        "compiled_ready": "컴파일됨", "compiled_compiling": "백그라운드에서 컴파일 중",
        "fallback": "⚠️ {reason}",
        "err_not_image": "읽을 수 있는 이미지 파일이 아닙니다. JPEG, PNG, WebP, GIF 사진을 올려 주세요.",
        "err_too_small": "이미지가 너무 작아 분석할 수 없습니다({size}). 더 큰 사진을 올려 주세요.",
        "err_too_large": "이미지가 너무 큽니다({size}, 한도 {limit}메가픽셀). 더 작은 사진을 올려 주세요.",
        "err_no_image": "먼저 사진을 올리거나 예시를 누르세요.",
        "err_model": "{model} 모델을 불러오지 못했습니다: {reason} 다른 모델로는 계속 사용할 수 있습니다.",
        "err_internal": "이미지를 분석하는 중에 문제가 생겼습니다. 앱은 계속 동작하니 다른 사진으로 시도해 보세요. "
                        "(요청 {request_id}: 자세한 내용은 서버 로그에 있습니다.)",
        "err_size_format": "“{value}”은(는) 크기가 아닙니다. 224x224처럼 세로 x 가로로 적어 주세요.",
        "err_size_range": "{value}은(는) 쓸 수 없습니다. 각 변은 {low}~{high}픽셀이어야 합니다.",
        "err_size_patch": "{value}은(는) {patch}×{patch} 패치로 나누어지지 않습니다. {suggestion}을(를) 써 보세요.",
        "err_size_not_offered": "{value}은(는) 이 서버가 제공하는 크기가 아닙니다. 목록에서 고르세요: {offered}.",
        "err_memory": "{size} 크기에서는 사진 한 장에 메모리가 약 {need} 필요하지만 이 서버의 한도는 {limit}입니다. "
                      "더 작은 크기를 고르세요.",
        "err_model_not_offered": "이 서버는 목록에 있는 모델만 제공합니다: {offered}.",
        "err_busy": "서버가 바쁩니다. 사진 {waiting}장이 분석을 기다리고 있습니다. 잠시 후 다시 시도해 주세요.",
        "err_expired": "이 사진의 분석 결과가 서버에 더 이상 남아 있지 않습니다. 사진을 다시 올려 주세요.",
        "model_not_cached": "이 컴퓨터의 모델 캐시에 없고 Hugging Face Hub에 연결할 수 없습니다.",
        "model_download": "Hugging Face Hub에서 받을 수 없습니다(이름을 확인하세요).",
        "model_broken": "vitviz가 불러올 수 있는 비전 트랜스포머 이미지 모델이 아닙니다.",
        "bundled_missing": "이 vitviz에 내장 오프라인 모델이 없습니다.",
        "using_bundled": "대신 내장 오프라인 모델을 사용합니다.",
        "gpu_fallback": "지금은 GPU 사용량을 다 써서 CPU에서 실행했습니다(더 느림).",
        "no_classifier": "{model} 모델은 분류기가 없습니다(자기 지도 학습). 어텐션 보기만 제공합니다.",
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
        "sec_see": "보기", "sec_explain": "설명", "sec_learn": "배우기",
        "tab_mae": "마스크드 오토인코더", "tab_norms": "토큰 노름", "tab_bias": "귀납적 편향",
        "size_trained": "{size} (학습 크기)",
        "token_query": "어텐션을 볼 토큰",
        "method_chefer": "Chefer 외 2021 (일반화 방법)", "method_grad_rollout": "기울기 가중 롤아웃",
        "map_raw": "원시 어텐션(마지막 레이어)", "map_rollout_mean": "롤아웃(평균)", "map_rollout_max": "롤아웃(최대)",
        "map_rollout_min": "롤아웃(최소)", "map_chefer": "Chefer 일반화", "map_grad_rollout": "기울기 롤아웃",
        "map_dino": "DINO 헤드 평균", "map_random": "무작위",
        "faith_help": "이 사진에서 각 맵은 모델에 얼마나 충실할까요? 맵이 가장 중요하다고 한 픽셀부터 지우면(실선) "
                      "클래스 확률이 빨리 떨어져야 하고(면적이 작을수록 좋음), 가장 덜 중요한 픽셀부터 지우면(점선) "
                      "유지되어야 합니다(면적이 클수록 좋음). 무작위 맵이 기준선입니다.",
        "faith_run": "이 사진에서 맵 측정하기",
        "faith_map": "맵", "faith_pos": "양의 섭동 AUC ↓", "faith_neg": "음의 섭동 AUC ↑",
        "faith_x": "지운 픽셀 비율", "faith_y": "예측 클래스의 확률",
        "faith_pos_curve": "중요한 픽셀부터 지움", "faith_neg_curve": "덜 중요한 픽셀부터 지움",
        "distance_y": "평균 어텐션 거리(픽셀)", "distance_ref": "이미지 너비 = {w}픽셀",
        "distance_help": "점 하나가 헤드 하나입니다. 그 헤드의 어텐션이 평균적으로 몇 픽셀 떨어진 곳까지 닿는지 "
                         "보여 줍니다. ViT는 첫 레이어부터 이미지 전체를 보는 헤드와 가까운 곳을 보는 헤드가 함께 "
                         "있습니다. CNN의 수용 영역은 레이어를 지날 때마다 조금씩만 넓어집니다.",
        "filters_help": "패치 투영 가중치의 주요 방향을 패치 모양으로 그렸습니다. 첫 레이어가 무엇을 찾는지 보여 줍니다.",
        "embedding_short": "임베딩",
        "norms_help": "블록을 지날 때마다 각 토큰 벡터의 길이(노름)입니다. 오래 학습한 큰 ViT는 배경의 몇몇 패치 "
                      "토큰의 노름이 매우 커지며, 모델은 이 토큰들을 메모장처럼 씁니다. 그러면 어텐션 맵에 그 자리가 "
                      "밝은 점으로 나타납니다(Darcet 외, *Vision Transformers Need Registers*, ICLR 2024). 레지스터 "
                      "토큰이 그 역할을 맡으면 점이 사라집니다. 뒤쪽 레이어에서 이웃보다 훨씬 밝은 타일을 찾아보세요.",
        "norm_patch_median": "패치: 중앙값", "norm_patch_max": "패치: 최대",
        "norms_map": "임베딩 직후와 블록마다 패치 토큰의 노름 (같은 색 범위)",
        "fill": "지운 픽셀의 값", "fill_mean": "데이터 평균 (Chefer 외)", "fill_black": "검은색 (Fashion-MNIST의 배경)",
        "dist_help": "DeiT의 증류 토큰 **[DIST]**(Touvron 외 2021)는 [CLS] 옆에 있는 두 번째 학습 토큰입니다. "
                     "학습할 때 이 토큰의 헤드는 교사 네트워크(여기서는 CNN)의 답을 따라 하고 [CLS]는 정답 레이블을 "
                     "배웁니다. 예측은 두 헤드의 평균입니다. 어느 토큰의 어텐션을 볼지 고르세요.",
        "inside_6_distilled": "6. 마지막 [CLS]와 [DIST]에 붙은 두 헤드의 평균: {top}",
        "bias_help": "CNN은 처음부터 가까운 곳을 보도록 만들어져 있습니다. 작은 커널, 어디서나 같은 가중치, 이웃한 픽셀끼리의 연결이 그렇습니다. ViT에는 이런 장치가 없습니다. 위치 임베딩은 무작위로 시작하고, 첫 레이어부터 모든 패치가 다른 모든 패치를 볼 수 있으므로 이미지의 배치를 데이터에서 배워야 합니다. 원본 튜토리얼은 그래서 ViT가 CNN보다 데이터가 더 많이 필요하고, 하이브리드(CNN 줄기의 특징 맵을 1×1 패치로 읽는 모델)는 그 중간이라고 말합니다. vitviz가 직접 측정했습니다. 아래 세 모델을 Fashion-MNIST의 점점 큰 부분집합으로 학습하되 모두 같은 수의 이미지를 보게 했고(`python -m vitviz.study`), 테스트 이미지 10,000장 전체로 평가했습니다.",
        "bias_plot": "학습 이미지 수에 따른 테스트 정확도",
        "study_x": "학습 이미지 수 (로그 척도, 모든 실행이 같은 수의 이미지를 봄)",
        "study_y": "테스트 정확도 (%)", "study_cnn": "CNN (지역성, 가중치 공유)",
        "study_hybrid": "하이브리드 ViT (CNN 줄기, 1×1 패치)", "study_vit": "ViT (4×4 패치)",
        "study_images": "학습 이미지 수", "study_name_cnn": "CNN", "study_name_hybrid": "하이브리드 ViT (CNN 줄기)",
        "study_name_vit": "ViT",
        "bias_missing": "이 vitviz에서는 아직 연구를 실행하지 않았습니다. `python -m vitviz.study`로 만들 수 있습니다.",
        "bias_at": "학습 이미지 **{n}**장일 때: {parts}.",
        "bias_gap": "CNN과 ViT의 차이(CNN − ViT): 이미지 {n0}장에서 **{small}**%p, {n1}장에서 **{large}**%p.",
        "bias_distilled": "**DeiT는 CNN의 편향을 빌려 격차를 일부 줄입니다.** 여기 오프라인 모델은 vitviz가 먼저 학습한 CNN으로부터 증류한 ViT입니다(Touvron 외 2021). CNN 교사의 테스트 정확도는 {teacher}%, 학생의 [CLS] 헤드만 쓰면 {cls}%, 교사의 답으로 학습한 [DIST] 헤드는 {dist}%, 두 헤드의 평균은 {both}%입니다. [DIST] 토큰은 *보기 · 패치와 토큰*에 보이며, 모든 어텐션 보기에서 두 토큰 중 하나를 고를 수 있습니다.",
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


def say(key: str, lang: str = "en", **fields) -> str:
    """A message whose fields may be messages too: a field named ``x_key`` is translated and
    passed as ``x`` (err_model's reason is model_not_cached, model_download, ...)."""
    for name in [f for f in fields if f.endswith("_key")]:
        fields[name[:-4]] = t(fields.pop(name), lang)
    return t(key, lang, **fields)
