"""vitviz: see what a Vision Transformer does with a photo.

The package computes; the Gradio app (app.py) only wires. Importing vitviz is
cheap: heavy modules (torch, transformers) load when first used.
"""

__version__ = "0.1.0"
