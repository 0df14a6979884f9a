"""The model families vitviz knows, one adapter each (vitviz.core.family), registered here in the order
the model selector lists their models: transformers' ViTs (ViT, DeiT, BEiT, DINO, DINOv2, MAE),
CLIP / SigLIP / SigLIP 2, timm. A family of your own needs only ``vitviz.core.family.register``."""

from ..core.family import register
from .timm_vit import Timm
from .transformers import Transformers
from .zeroshot import ZeroShot

for _family in (Transformers(), ZeroShot(), Timm()):
    register(_family)
