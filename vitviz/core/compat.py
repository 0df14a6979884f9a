"""Every use of torch's, transformers' and timm's private API, in one place.

Each function names what it reaches into and why no public API serves; tests/test_compat.py calls
each one against the installed versions and fails the day one of them changes.
"""

from __future__ import annotations

from contextlib import contextmanager


def amx_tile_supported() -> bool:
    """Whether the CPU has AMX tiles (fast bfloat16 and int8). torch.cpu._is_amx_tile_supported: torch
    has no public query of CPU features; /proc/cpuinfo may hide AMX in some VMs that torch detects."""
    import torch

    return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def avx512_bf16_supported() -> bool:
    """Whether the CPU has AVX512-BF16. torch.cpu._is_avx512_bf16_supported (private, as above)."""
    import torch

    return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())


@contextmanager
def inductor_freezing():
    """Inductor's ``freezing`` on for the block: weights become constants, which inductor needs to
    prepack them for oneDNN's int8 kernels. torch.compile(options={"freezing": True}) is the public
    way, but torch 2.13 did not apply it to a torchao-quantized model; the private config patch does."""
    import torch._inductor.config as config

    with config.patch(freezing=True):
        yield


def init_weights(model, module) -> bool:
    """Re-initialise `module` with its transformers model's own initialiser (PreTrainedModel._init_weights,
    what post_init applies to every module); False when `model` has none. transformers 5 skips tensors
    marked ``_is_hf_initialized`` (loaded from a checkpoint), so the marks are cleared first."""
    if not hasattr(model, "_init_weights"):
        return False
    for tensor in list(module.parameters(recurse=False)) + list(module.buffers(recurse=False)):
        if hasattr(tensor, "_is_hf_initialized"):
            del tensor._is_hf_initialized
    model._init_weights(module)
    return True


def timm_graph_nodes(model) -> list[str]:
    """The names of a timm model's eval graph nodes, in order (torch.fx): timm's
    ``timm.models._features_fx.get_graph_node_names``, the list AttentionExtract's names come from."""
    from timm.models._features_fx import get_graph_node_names

    return list(get_graph_node_names(model)[1])
