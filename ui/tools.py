"""Tools for AI assistants: the Model Context Protocol endpoint (``launch(mcp_server=True)``).

Gradio lists every documented API endpoint as an MCP tool, named after its function, described by
its docstring (the Args section describes the parameters) and typed by its components: a photo is a
gr.Image (a URL or base64 data from the assistant), a picture comes back as an image. The tools are
the page's own views rendered on a fresh analysis, so they answer what the page shows, with the same
bounds: public mode's models and sizes, the waiting queue, the memory budget, one photo per call.
A refusal is a plain gr.Error in the asked language, as on the page.
"""

from __future__ import annotations

import gradio as gr

from vitviz import methods
from vitviz.core.i18n import lang_of
from vitviz.evidence.perturb import FILLS
from vitviz.service import heads as head_work
from vitviz.service.context import AppContext, Opened

from . import classmap, evidence, heads, rollout, upload
from .text import t

MAX_NAME = 200          # characters of a model name: Hub ids are far shorter
RANKS = 5               # a class map is drawn for one of the top five classes, as on the page
LANGS = ["en", "ko"]


def class_methods() -> list[str]:
    return list(methods.class_specific())


class Tools:
    """The tools of one app (its context). Bound methods, so that each is named and documented as itself."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def analyze_photo(self, photo, model: str = "default", size: str = "default", lang: str = "en"):
        """Classify a photo with a Vision Transformer and show where it looks (attention rollout).

        Args:
            photo: The photo (a URL or base64-encoded image).
            model: A model the server offers (default: the server's start model).
            size: Input size as HxW, e.g. 224x224, one the server offers (default: the model's own size).
            lang: Language of the answer: en (English) or ko (Korean).

        Returns:
            The model, its top-5 classes with probabilities, and the attention rollout drawn over the photo.
        """
        lang = lang_of(lang)
        opened, status = self.analyzed(photo, model, size, lang)
        drawn = rollout.render(self.ctx, opened, lang)
        return f"{status}\n\n{top5_text(opened, lang)}", drawn["on_photo"]

    def class_map(self, photo, rank: int = 1, method: str = "chefer", model: str = "default", size: str = "default",
                  lang: str = "en"):
        """Explain one of the top-5 classes of a photo with a class-specific relevance map.

        Args:
            photo: The photo (a URL or base64-encoded image).
            rank: Which of the top-5 classes to explain: 1 (the prediction) to 5.
            method: The explanation method (one of the listed values; chefer is the default).
            model: A model the server offers (default: the server's start model).
            size: Input size as HxW (default: the model's own size).
            lang: en or ko.

        Returns:
            Which class and method were drawn, and the map over the photo.
        """
        lang = lang_of(lang)
        if method not in class_methods():
            raise refusal("err_tool_method", lang, methods=", ".join(class_methods()))
        opened, _ = self.analyzed(photo, model, size, lang)
        rank, (index, name, p) = self.ranked(opened, rank, lang)
        drawn = classmap.render(self.ctx, opened, lang, target=index, method=method)
        return t("tool_class_map", lang, name=name, p=f"{p:.1%}", rank=rank, method=method), drawn["on_photo"]

    def evidence_table(self, photo, fill: str = "default", model: str = "default", size: str = "default",
                       lang: str = "en"):
        """Measure how faithful each explanation map is for a photo (deletion and insertion curves, SaCo).

        Args:
            photo: The photo (a URL or base64-encoded image).
            fill: What removed pixels become (default: the model's usual fill; road where the memory allows).
            model: A model the server offers (default: the server's start model).
            size: Input size as HxW (default: the model's own size).
            lang: en or ko.

        Returns:
            The evidence table (Markdown; each column names its convention) and the curves.
        """
        lang = lang_of(lang)
        opened, _ = self.analyzed(photo, model, size, lang)
        drawn = evidence.render(self.ctx, opened, lang, fill=given(fill), action="measure")
        table = drawn.get("table") or drawn.get("note") or ""
        return str(getattr(table, "value", table) or ""), drawn.get("plot")

    def head_attribution(self, photo, rank: int = 1, model: str = "default", size: str = "default",
                         lang: str = "en"):
        """Which heads decide: one of the top-5 classes' logit split exactly over the embeddings, every
        attention head of every layer, every layer's MLP and the bias (direct logit attribution, the read-out's
        norms frozen at their value in the real forward).

        Args:
            photo: The photo (a URL or base64-encoded image).
            rank: Which of the top-5 classes to split: 1 (the prediction) to 5.
            model: A model the server offers (default: the server's start model).
            size: Input size as HxW (default: the model's own size).
            lang: en or ko.

        Returns:
            The parts (the heads that add or take most, the MLPs, embeddings, bias, and the model's own logit they
            sum to) and the layer × head grid of contributions.
        """
        lang = lang_of(lang)
        opened, _ = self.analyzed(photo, model, size, lang)
        _, (index, name, _) = self.ranked(opened, rank, lang)
        attr = head_work.attribution_of(self.ctx, opened, index)
        if attr is None:
            raise refusal("heads_not_affine", lang, model=opened.loaded.name)
        drawn = heads.render(self.ctx, opened, lang, target=index)
        return attribution_text(attr, name, lang), drawn["grid"]

    def ranked(self, opened: Opened, rank, lang: str) -> tuple[int, tuple[int, str, float]]:
        """(rank clamped to 1..5, (class index, name, probability) of that class in the top 5)."""
        top = opened.an.top(RANKS, lang)
        if not opened.loaded.has_classifier or not top:
            raise refusal("no_classifier", lang, model=opened.loaded.name)
        rank = min(max(int(rank or 1), 1), len(top))
        return rank, top[rank - 1]

    def analyzed(self, photo, model: str, size: str, lang: str) -> tuple[Opened, str]:
        """One photo analysed as an upload is (public bounds included): (the opened analysis, its status)."""
        ctx = self.ctx
        model = given((model or "").strip()) or ctx.start.name
        size = given(size) or ""
        if len(model) > MAX_NAME:
            raise refusal("err_model_not_offered", lang, offered=", ".join(ctx.policy.models))
        if photo is None:
            raise refusal("err_no_image", lang)
        call = upload.owner(None)               # each call its own place among the waiting
        upload.admit(ctx, call, lang)
        try:
            out = upload.analyze_group(ctx, {}, [photo], model, size, [lang])[0]
        finally:
            ctx.waiting.done(call)
        if "session" not in out:
            raise gr.Error(out["status"], print_exception=False)
        return ctx.open(out["session"]), out["status"]

    def all(self) -> tuple:
        return self.analyze_photo, self.class_map, self.evidence_table, self.head_attribution


def given(value: str | None) -> str | None:
    """A parameter's value, None where the assistant left the default ("default" or empty)."""
    return None if value in (None, "", "default") else value


def top5_text(opened: Opened, lang: str) -> str:
    return "\n".join(f"{rank}. {name}: {p:.1%}" for rank, (_, name, p) in enumerate(opened.an.top(5, lang), 1))


def attribution_text(attr, name: str, lang: str, shown: int = 5) -> str:
    """The split in words: the heads that add most and take most, the MLPs, the rest, and the logit."""
    order = attr.order()                            # the most positive first

    def listed(pairs) -> str:
        return ", ".join(f"L{layer} H{head}: {attr.heads[layer, head]:+.3f}" for layer, head in pairs)

    lines = [t("tool_heads_title", lang, name=name, logit=f"{attr.logit:.3f}"),
             t("tool_heads_for", lang, heads=listed(order[:shown])),
             t("tool_heads_against", lang, heads=listed(order[::-1][:shown])),
             t("heads_parts", lang, emb=f"{attr.embeddings:+.3f}", heads=f"{attr.heads.sum():+.3f}",
               mlp=f"{attr.mlp.sum():+.3f}", bias=f"{attr.bias:+.3f}"),
             t("heads_total", lang, total=f"{attr.total:.3f}", logit=f"{attr.logit:.3f}")]
    return "\n".join(lines)


def refusal(key: str, lang: str, **fields) -> gr.Error:
    return gr.Error(t(key, lang, **fields), print_exception=False)


def build(ctx: AppContext) -> Tools:
    """The tools' endpoints: hidden components (they type the parameters and the results), no page."""
    tools = Tools(ctx)
    with gr.Column(visible=False):
        photo = upload.TolerantImage(type="filepath", label="photo")   # refused in our words
        # the offered models and sizes as the parameters' values (public mode offers only these;
        # "default" is the server's start model, or the model's own size)
        model = gr.Dropdown(["default", *ctx.policy.models], value="default", label="model")
        size = gr.Dropdown(["default", *(v for _, v in upload.size_choices(ctx.start))], value="default",
                           label="size", allow_custom_value=True)
        lang = gr.Dropdown(LANGS, value="en", label="lang")
        rank = gr.Number(1, minimum=1, maximum=RANKS, precision=0, label="rank")
        method = gr.Dropdown(class_methods(), value="chefer", label="method")
        fill = gr.Dropdown(["default", *FILLS], value="default", label="fill")
        text, picture = gr.Markdown(), gr.Image(type="numpy", format="png")
        for tool, inputs in ((tools.analyze_photo, [photo, model, size, lang]),
                             (tools.class_map, [photo, rank, method, model, size, lang]),
                             (tools.evidence_table, [photo, fill, model, size, lang]),
                             (tools.head_attribution, [photo, rank, model, size, lang])):
            # queue=False: gradio's MCP server returns each output as its own content only on this path
            # (a queued call's outputs come back as one text); ui.upload.admit bounds the waiting instead
            gr.Button(visible=False).click(tool, inputs, [text, picture], api_name=tool.__name__, queue=False)
    return tools
