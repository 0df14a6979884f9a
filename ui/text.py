"""Words on the page: labels the browser translates (gr.I18n) and the language switch.

Static labels are ``L(key)``: Gradio picks the browser's language. Text built at run time
(messages, captions) comes from ``t`` with the language the page sends along. Both read the
page's words (ui/strings.py) and the library's (vitviz/i18n.py).
"""

from __future__ import annotations

import gradio as gr

from vitviz.core import i18n
from vitviz.core.korean import particles

from . import strings

PAGE = i18n.Strings(strings.STRINGS, fallback=i18n.LIBRARY)   # the page's words, then the library's
t, say = PAGE.t, PAGE.say
# Our keys are prefixed: Gradio's own translations use plain keys such as "image". Static Korean
# labels get their particles settled here, as t does for messages.
I18N = gr.I18n(**{lang: {f"vv_{k}": particles(v) if lang == "ko" else v
                         for k, v in {**i18n.STRINGS[lang], **table}.items()}
                  for lang, table in strings.STRINGS.items()})


def L(key: str):
    """A label translated in the browser."""
    return I18N(f"vv_{key}")


# The page language: Gradio translates static labels in the browser from the browser's language; the
# radio switches it live (ui.compat.SET_LANG_JS) and tells the server which language to write messages in.
DETECT_LANG_JS = "() => ((navigator.language || 'en').toLowerCase().startsWith('ko') ? 'ko' : 'en')"

# Small pictures (a 28×28 garment) are scaled up crisply instead of shown as a thumbnail, and the
# section tabs read as the top level of the page.
# Presentation mode (a projector): larger type, and the page shrinks to the section tabs and the
# view on show; the photo, intro and status come back when it is switched off. Pure CSS (the
# checkbox's state, through :has), so it works from the first click, before any event handler.
# The title and the switches shrink to one line each and a picture is held to the screen's height
# less what stands above it (about 250 px), so the first view fits 1280×800 without scrolling
# (tests/test_browser_present.py). Labels stay at 15 px so their badge stays inside the white band
# above a figure (ui.view.BADGE_BAND).
CSS = """
#upload img, .vv-crisp img { image-rendering: pixelated; }
#upload img { min-width: 60%; min-height: 60%; object-fit: contain; }
#sections > .tab-wrapper button { font-size: 1.15em; font-weight: 600; }
body:has(#present input:checked), body:has(#present input:checked) .gradio-container {
  --text-xxs: 13px; --text-xs: 15px; --text-sm: 18px; --text-md: 21px; --text-lg: 25px; --text-xl: 30px;
  --text-xxl: 36px; --block-label-text-size: 15px; --block-title-text-size: 21px; --section-header-text-size: 21px;
  --body-text-size: 21px; --button-large-text-size: 24px; --button-small-text-size: 18px;
  --input-text-size: 21px; --checkbox-label-text-size: 18px; --prose-text-size: 21px;
}
body:has(#present input:checked) .gradio-container { max-width: 100% !important; }
body:has(#present input:checked) .vv-chrome { display: none !important; }
body:has(#present input:checked) .prose h1 { font-size: var(--text-xl); margin: 0 !important; }
body:has(#present input:checked) div:has(> #lang-switch) { flex-direction: row; flex-wrap: wrap; }
body:has(#present input:checked) div:has(> #lang-switch) > * { width: auto !important; flex: 1 1 auto; }
body:has(#present input:checked) #lang-switch [data-testid="block-info"] { display: none; }
body:has(#present input:checked) #sections img { max-height: calc(100vh - 250px); }
"""
