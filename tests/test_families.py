"""Other ViT families through the same path (tiny random checkpoints saved locally stand in for the
Hub models), the command line, and the translations."""

import numpy as np
import pytest
import torch

from vitviz import analysis, mae, methods, models
from vitviz.analysis import analyze
from vitviz.pictures import maps as views

from .conftest import save_tiny

KW = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
          intermediate_size=64)


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory):
    from transformers import (
        BeitConfig,
        BeitForImageClassification,
        ViTConfig,
        ViTMAEConfig,
        ViTMAEForPreTraining,
        ViTModel,
    )

    root = tmp_path_factory.mktemp("families")
    return {
        "dino": save_tiny(root / "dino", lambda c: ViTModel(c, add_pooling_layer=False), ViTConfig(**KW)),
        "beit": save_tiny(root / "beit", BeitForImageClassification,
                          BeitConfig(**KW, use_absolute_position_embeddings=False, use_relative_position_bias=True)),
        "mae": save_tiny(root / "mae", ViTMAEForPreTraining,
                         ViTMAEConfig(**KW, decoder_hidden_size=32, decoder_num_hidden_layers=1,
                                      decoder_num_attention_heads=4, decoder_intermediate_size=64)),
    }


def test_dino_backbone_gives_attention_views_without_a_classifier(family_dirs, photo):
    loaded = models.load(family_dirs["dino"], "cpu", "float32")
    assert not loaded.has_classifier
    an = analyze(loaded, photo)
    assert an.probs is None and an.top() == [] and an.grid == (4, 4)
    assert views.dino_heads(an, 0.6).ndim == 3
    offered = methods.offered(loaded)
    assert {"raw", "rollout_mean", "dino", "random"} <= set(methods.maps(loaded, an, offered))
    assert not any(methods.get(m).class_specific for m in offered)                    # no class maps


def test_beit_explains_it_has_no_absolute_position_embeddings(family_dirs, photo):
    from vitviz.posemb import NoAbsolutePositions

    loaded = models.load(family_dirs["beit"], "cpu", "float32")
    an = analyze(loaded, photo)
    assert an.prefix == 1 and an.top(1)
    with pytest.raises(NoAbsolutePositions):
        views.position_similarity(loaded)
    assert views.query_maps(loaded, an, 5, 1, None, 0.5)[3] is None      # no similarity overlay


def test_mae_attention_sees_every_patch_in_order_and_reconstructs(family_dirs, photo):
    loaded = models.load(family_dirs["mae"], "cpu", "float32")
    an = analyze(loaded, photo)
    assert an.grid == (4, 4) and an.attentions.shape[-1] == 17
    again = analyze(loaded, photo)                       # no random shuffling between runs
    assert np.allclose(an.att().numpy(), again.att().numpy())
    recon, mask = mae.reconstruct(loaded, an.pixel_values, 0.75)
    assert recon.shape == an.seen.shape and mask.shape == an.grid and mask.sum() == 12   # 12 of 16 patches
    masked, recon_big, pasted = views.mae_pictures(an, recon, mask)
    assert masked.shape == recon_big.shape == pasted.shape
    hidden = (masked == 127).all(-1).mean()
    assert 0.7 < hidden < 0.8                            # 75% of the input is grey


def test_mae_reconstruction_equals_transformers_masked_forward(family_dirs, photo):
    """vitviz masks the embeddings itself (the shared model keeps mask_ratio 0): same result as
    transformers' own forward with a 75% mask ratio and the same noise."""
    from transformers import ViTMAEForPreTraining

    loaded = models.load(family_dirs["mae"], "cpu", "float32")
    an = analyze(loaded, photo)
    theirs = ViTMAEForPreTraining.from_pretrained(family_dirs["mae"], mask_ratio=0.75).eval()
    noise = torch.rand(16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = theirs(pixel_values=an.pixel_values[None], noise=noise[None])
    recon, mask = mae.reconstruct(loaded, an.pixel_values, 0.75, seed=3)
    assert np.array_equal(mask.reshape(-1), out.mask[0].numpy())
    rgb = theirs.unpatchify(out.logits, (32, 32))[0]
    rgb = ((rgb * 0.5 + 0.5) * 255).clamp(0, 255).permute(1, 2, 0).numpy().astype(np.uint8)
    assert np.abs(rgb.astype(int) - recon.astype(int)).max() <= 1
    assert loaded.model.config.mask_ratio == 0.0          # the shared model was not touched


def test_switching_models_in_the_app_handler(tiny_vit_dir, tiny_deit_dir, family_dirs, tmp_path):
    from gradio_client import Client, handle_file
    from PIL import Image

    import app

    demo = app.create_demo(tiny_vit_dir, "cpu", "float32")
    demo.queue().launch(prevent_thread_lock=True, quiet=True, **app.launch_kwargs())
    try:
        client = Client(demo.local_url, verbose=False)
        path = tmp_path / "p.png"
        Image.new("RGB", (64, 48), (120, 30, 200)).save(path)
        deit = client.predict(handle_file(str(path)), tiny_deit_dir, "32x32", "ko", api_name="/analyze")
        assert "분석했어요" in deit[0] and "접두 토큰 2개" in deit[4]     # [CLS] + [DIST], told in Korean
        dino = client.predict(handle_file(str(path)), family_dirs["dino"], "32x32", "en", api_name="/analyze")
        assert "no classifier" in dino[0]
        big = client.predict(handle_file(str(path)), tiny_vit_dir, "48x48", "en", api_name="/analyze")
        assert "6×6 = 36" in big[4]
    finally:
        demo.close()


def test_cli_explain_writes_figures_and_skips_bad_files(tiny_vit_dir, tmp_path, photo):
    from vitviz.__main__ import main

    folder = tmp_path / "in"
    folder.mkdir()
    photo.save(folder / "a.png")
    photo.rotate(90, expand=True).save(folder / "b.jpg")
    (folder / "c.png").write_text("not an image")
    out = tmp_path / "out"
    assert main(["explain", str(folder), "--out", str(out), "--model", tiny_vit_dir, "--dtype", "float32"]) == 0
    for stem in ("a", "b"):
        names = {p.name for p in (out / stem).iterdir()}
        assert {"rollout.png", "patch_grid.png", "class_chefer.png", "predictions.txt"} <= names
    assert not (out / "c").exists()


def test_every_string_has_english_and_korean():
    from ui import strings
    from ui.text import t
    from vitviz.core.i18n import STRINGS, lang_of

    for table in (STRINGS, strings.STRINGS):
        assert set(table["en"]) == set(table["ko"])
        assert all(table["ko"][k].strip() for k in table["ko"])
    assert not set(STRINGS["en"]) & set(strings.STRINGS["en"])     # each word in one place
    assert lang_of("ko-KR,ko;q=0.9") == "ko" and lang_of("fr-FR") == "en"
    assert "1.50" in t("ok", "en", model="m", device="cpu", dtype="float32", seconds=1.5)


def test_regression_bold_renders_in_korean():
    """CommonMark does not close "**[DIST]**는": a closing ** after punctuation must not touch a
    letter. Korean particles follow words directly, so the page showed the asterisks."""
    import re

    from markdown_it import MarkdownIt

    from ui.text import PAGE

    md = MarkdownIt("commonmark")
    for lang, table in PAGE.tables.items():
        for key, text in table.items():
            filled = re.sub(r"\{[^}]*\}", "1,000", text)        # placeholders as the numbers they become
            assert "**" not in md.render(filled), (lang, key)


def test_inside_the_vit_steps_carry_the_models_real_shapes(tiny_deit_dir, photo):
    loaded = models.load(tiny_deit_dir, "cpu", "float32")
    an = analyze(loaded, photo)
    projection = analysis.patch_projection(loaded, an.pixel_values)
    assert projection.shape == (16, 32)
    steps = views.inside_steps(loaded, an, projection, "en")
    assert len(steps) == 6
    assert "`16 × 192`" in steps[1][0]                        # 4×4 patches of 8·8·3 values
    assert "[CLS], [DIST]" in steps[3][0] and "`18 × 32`" in steps[3][0]
    assert steps[2][1].ndim == 3 and steps[5][1] is None
    assert "패치" in views.inside_steps(loaded, an, projection, "ko")[0][0]
    assert "[DIST]" in steps[5][0]                            # the two heads, averaged
