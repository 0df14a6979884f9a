"""Explanation methods, one module each, registered once (vitviz.methods.registry); importing this
package registers the built-in ones. ``maps`` and ``class_maps`` compute any of them."""

from . import attention_maps, gradients, legrad  # noqa: F401  (each module registers its methods)
from .compute import class_maps, maps, measured
from .registry import (
    ATTENTIONS,
    BACKWARD,
    GRAPH,
    Method,
    all_methods,
    check,
    class_specific,
    get,
    ids,
    offered,
    passes,
    register,
    registered,
    unregister,
)

__all__ = ["ATTENTIONS", "BACKWARD", "GRAPH", "Method", "all_methods", "check", "class_maps", "class_specific", "get",
           "ids", "maps", "measured", "offered", "passes", "register", "registered", "unregister"]
