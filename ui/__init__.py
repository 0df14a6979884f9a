"""The Gradio UI: one module per view, each with ``build`` (layout) and ``wire`` (events);
app.py composes them. The maths and pictures come from the vitviz library."""
