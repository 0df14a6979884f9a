"""Tiny random checkpoints of the families beyond transformers' ViT, saved as the Hub would hold them:
DINOv2 (with and without registers) and CLIP / SigLIP / SigLIP 2 with ``save_pretrained`` (their
tokenizers trained here, offline, with the ``tokenizers`` library), timm ViTs in timm's Hub layout."""

from __future__ import annotations

import torch

from .conftest import LABELS, save_tiny

SIZE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
CORPUS = ["a photo of a cat", "a photo of a dog", "a photo of a car", "a photo of a tree", "cup boat rocket",
          "고양이 강아지 자동차 나무", "coffee astronaut person"]


def save_dinov2(path, registers: int = 0, classifier: bool = False, seed: int = 0) -> str:
    """DINOv2 (registers=0) or DINOv2 with registers: resize 32, crop 28, patch 7 -> a 4×4 grid."""
    import transformers
    from transformers import BitImageProcessor

    kw = dict(image_size=28, patch_size=7, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, mlp_ratio=2)
    if classifier:
        kw.update(num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                  label2id={n: i for i, n in enumerate(LABELS)})
    if registers:
        config = transformers.Dinov2WithRegistersConfig(**kw, num_register_tokens=registers)
        cls = (transformers.Dinov2WithRegistersForImageClassification if classifier
               else transformers.Dinov2WithRegistersModel)
    else:
        config = transformers.Dinov2Config(**kw)
        cls = transformers.Dinov2ForImageClassification if classifier else transformers.Dinov2Model
    proc = BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 28, "width": 28}, do_center_crop=True,
                             image_mean=[0.5] * 3, image_std=[0.5] * 3)

    def distinct(model):          # random init leaves [CLS], registers and positions near zero
        emb = model.base_model.embeddings
        for p in (emb.cls_token, emb.position_embeddings, getattr(emb, "register_tokens", None)):
            if p is not None:
                p.normal_(0, 0.5)

    return save_tiny(path, cls, config, proc, seed=seed, init=distinct)


def tiny_tokenizer(length: int):
    """A byte-level BPE tokenizer trained here (Korean included), as transformers saves one."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[
        ("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", model_max_length=length)


def save_zero_shot(path, kind: str = "clip", seed: int = 0) -> str:
    """A tiny CLIP, SigLIP or SigLIP 2 (32×32 input, patch 8: a 4×4 grid) with its tokenizer."""
    import transformers

    tokenizer = tiny_tokenizer(32)
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in ("<pad>", "<s>", "</s>")}
    text = dict(SIZE, vocab_size=len(tokenizer), max_position_embeddings=32, pad_token_id=ids["<pad>"],
                bos_token_id=ids["<s>"], eos_token_id=ids["</s>"])
    vision = dict(SIZE, image_size=32, patch_size=8)
    if kind == "clip":
        config = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
        cls, proc = transformers.CLIPModel, transformers.CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    elif kind == "siglip":
        config = transformers.SiglipConfig(text_config=text, vision_config=vision)
        cls, proc = transformers.SiglipModel, transformers.SiglipImageProcessor(size={"height": 32, "width": 32})
    else:
        vision = dict(SIZE, num_patches=16, patch_size=8)
        config = transformers.Siglip2Config(text_config=text, vision_config=vision)
        cls, proc = transformers.Siglip2Model, transformers.Siglip2ImageProcessor(patch_size=8, max_num_patches=16)

    torch.manual_seed(seed)
    model = cls(config).eval()
    with torch.no_grad():         # a trained model's temperature, so that scores differ visibly
        model.logit_scale.fill_(2.0)
    for part in (model, proc, tokenizer):
        part.save_pretrained(path)
    return str(path)


TIMM_ARGS = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, mlp_ratio=2.0, num_classes=len(LABELS))


def save_timm(path, reg_tokens: int = 0, seed: int = 0):
    """A tiny timm ViT in timm's Hub layout (config.json + model.safetensors); returns (folder, model)."""
    import timm
    from timm.models._hub import save_for_hf

    args = dict(TIMM_ARGS, reg_tokens=reg_tokens) if reg_tokens else dict(TIMM_ARGS)
    torch.manual_seed(seed)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, **args).eval()
    with torch.no_grad():
        for p in (model.cls_token, model.pos_embed, model.reg_token):
            if p is not None:
                p.normal_(0, 0.5)
    save_for_hf(model, path, model_config={"label_names": LABELS}, model_args=args, safe_serialization=True)
    return str(path), model
