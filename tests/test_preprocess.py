"""Preprocessing equals the model's image processor, keeps the geometry, and handles bad input."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from vitviz.core.preprocess import BadImage, open_image, prepare, spec_from_processor


def processors():
    from transformers import DeiTImageProcessor, ViTImageProcessor

    return [
        ViTImageProcessor(),                                                     # squash to 224×224
        DeiTImageProcessor(),                                                    # 256×256 then crop 224
        ViTImageProcessor(size={"shortest_edge": 64}, do_center_crop=True, crop_size={"height": 48, "width": 48}),
        ViTImageProcessor(size={"height": 32, "width": 48}, image_mean=[0.2, 0.3, 0.4], image_std=[0.5, 0.6, 0.7]),
    ]


@pytest.mark.parametrize("proc", processors(), ids=lambda p: type(p).__name__ + str(p.size))
@pytest.mark.parametrize("size", [(90, 60), (60, 90), (50, 50)])
def test_prepare_equals_the_image_processor(proc, size):
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    expected = proc(images=img, return_tensors="pt").pixel_values[0]
    ours = prepare(img, spec_from_processor(proc))
    assert ours.pixel_values.shape == expected.shape
    assert torch.allclose(ours.pixel_values, expected, atol=1e-5)


def test_box_of_a_centre_crop_is_the_middle_of_the_photo():
    from transformers import DeiTImageProcessor

    img = Image.new("RGB", (400, 200))
    box = prepare(img, spec_from_processor(DeiTImageProcessor())).box
    # squash to 256×256, crop 224: 16 px of 256 on each side = 1/16 of each axis
    assert box == pytest.approx((400 / 16, 200 / 16, 400 * 15 / 16, 200 * 15 / 16))


def test_box_of_a_plain_resize_is_the_whole_photo():
    from transformers import ViTImageProcessor

    assert prepare(Image.new("RGB", (300, 100)), spec_from_processor(ViTImageProcessor())).box == (0, 0, 300, 100)


def test_seen_shows_what_the_model_saw():
    from transformers import ViTImageProcessor

    proc = ViTImageProcessor(size={"height": 32, "width": 32})
    p = prepare(Image.new("RGB", (64, 40), (200, 100, 50)), spec_from_processor(proc))
    assert p.seen.shape == (32, 32, 3)
    assert np.all(p.seen == [200, 100, 50])


def png_bytes(img, **kw):
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def test_bad_input_not_an_image():
    with pytest.raises(BadImage) as e:
        open_image(b"this is plain text, not a picture")
    assert e.value.key == "err_not_image"


def test_bad_input_truncated_file():
    data = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    with pytest.raises(BadImage) as e:
        open_image(data[: len(data) // 2])
    assert e.value.key == "err_not_image"


def test_bad_input_one_pixel_image():
    with pytest.raises(BadImage) as e:
        open_image(png_bytes(Image.new("RGB", (1, 1))))
    assert e.value.key == "err_too_small"
    assert "1×1" in str(e.value)


def test_grayscale_becomes_rgb():
    img = open_image(png_bytes(Image.new("L", (20, 10), 77)))
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (77, 77, 77)


def test_rgba_transparency_is_composited_on_white():
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    img = open_image(png_bytes(rgba))
    assert img.getpixel((5, 5)) == (255, 255, 255)
    assert img.getpixel((0, 0)) == (0, 0, 255)


def test_palette_png_with_transparency():
    p = Image.new("P", (8, 8), 0)
    p.putpalette([0, 255, 0] + [0, 0, 0] * 255)
    img = open_image(png_bytes(p, transparency=0))
    assert img.mode == "RGB" and img.getpixel((3, 3)) == (255, 255, 255)
    assert open_image(png_bytes(p)).getpixel((3, 3)) == (0, 255, 0)


def test_exif_rotation_is_applied():
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 10, 20))           # white band on the left
    exif = Image.Exif()
    exif[274] = 6                                          # "rotate 90° clockwise to display"
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif, quality=95)
    upright = open_image(buf.getvalue())
    assert upright.size == (20, 40)
    top = np.asarray(upright)[:8].mean()
    bottom = np.asarray(upright)[-8:].mean()
    assert top > 200 and bottom < 50                       # the band is now at the top


def test_numpy_float_input():
    img = open_image(np.full((8, 8, 3), 0.5, dtype=np.float32))
    assert img.getpixel((0, 0)) == (127, 127, 127)
