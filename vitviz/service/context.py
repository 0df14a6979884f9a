"""What every handler needs, passed explicitly: the app's context and a session opened for one event.

``AppContext`` holds the settings, the start model, the hosting policy, where model work runs, the
store of analyses, the picture files and the classroom's state (drawings, board, camera). A browser
tab's state is a ``Session``: a key into the store and the model's name, so the server's memory does
not grow with the number of tabs. Each event opens its session once (``open``): the analysis and the
model that made it, resolved once, handed to the view as an ``Opened``.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from .. import models
from ..analysis import Analysis, analyze_batch, run_model
from ..core import limits, memory
from ..core.cache import Cache
from ..core.i18n import say, t
from ..core.labels import parse_labels
from ..core.limits import RequestRefused
from ..core.loaded import LoadedModel
from ..core.loading import ModelUnavailable
from ..core.preprocess import BadImage
from ..core.settings import Settings
from . import examples, hosting
from .board import Board
from .camera import Camera
from .guesses import Guesses
from .hosting import Policy
from .runner import ModelRunner
from .spool import PictureSpool


@dataclass(frozen=True)
class Session:
    """A browser tab's latest analysis: its key in the store and the model that made it."""
    key: str
    model: str


@dataclass(frozen=True)
class Opened:
    """A session opened for one event: its analysis and the model that made it (typed labels bound)."""
    session: Session
    loaded: LoadedModel
    an: Analysis


class Expired(LookupError):
    """The session's analysis was dropped from the store (memory budget) or there is none."""


class Busy(Exception):
    """Too many photos wait for the model: come back in a moment."""

    def __init__(self, waiting: int):
        super().__init__(f"{waiting} photos are waiting")
        self.waiting = waiting


class Waiting:
    """Photos admitted and not yet answered, one place per owner (a browser tab), counted here because
    Gradio's queue length is not public API. A tab's newer photo takes its older one's place: Gradio
    analyses a tab's latest photo once the one it is analysing is done (trigger mode "always_last"),
    never both. A place never given back (a tab closed mid-queue) expires, so the count cannot creep."""

    def __init__(self, expire_s: float = 120.0):
        self.expire_s = expire_s
        self._places: dict[str, tuple[float, str]] = {}      # owner -> (admitted at, its photo), oldest first
        self._lock = threading.Lock()

    def admit(self, owner: str, limit: int, photo: str = "") -> bool:
        """Take a place for owner's photo. False: owner already waits with this very photo (Gradio
        reports some new photos twice), nothing to do. Raises Busy when `limit` other owners wait."""
        now = time.monotonic()
        with self._lock:
            for key in [k for k, (since, _) in self._places.items() if now - since > self.expire_s]:
                del self._places[key]
            held = self._places.get(owner)
            if held is not None and photo and held[1] == photo:
                return False
            if held is None and len(self._places) >= limit:
                raise Busy(len(self._places))
            self._places[owner] = (now, photo)
            return True

    def done(self, owner: str) -> None:
        """owner's photo answered: its place goes."""
        with self._lock:
            self._places.pop(owner, None)

    def __len__(self) -> int:
        return len(self._places)


@dataclass
class AppContext:
    settings: Settings
    start: LoadedModel                       # the model the page opens with
    policy: Policy
    runner: ModelRunner
    store: Cache[Analysis]                   # the sessions' latest analyses, within a byte budget
    spool: PictureSpool = field(default_factory=PictureSpool)
    pictures: Cache = field(default_factory=Cache)     # model-only pictures, written once as files
    # Analyses of the example photos, shared by everybody who clicks one (ViT-B: ~11 MB each).
    examples: Cache[Analysis] = field(default_factory=lambda: Cache(max_entries=16))
    waiting: Waiting = field(default_factory=Waiting)
    guesses: Guesses = field(default_factory=Guesses)  # "Guess where it looks": each tab's drawing
    board: Board | None = None                         # the class board, on a classroom server only
    camera: Camera = field(default_factory=Camera)

    @classmethod
    def create(cls, settings: Settings | None = None) -> "AppContext":
        """Load the start model (offline first) and set the policy: the owner's start model is trusted."""
        settings = settings or Settings.from_env()
        memory.limit_arenas()
        start = models.load(settings.model, settings.device, settings.dtype, settings)
        return cls(settings=settings, start=start, policy=hosting.policy(settings, start.name),
                   runner=ModelRunner(settings.zerogpu),
                   store=Cache(max_bytes=limits.session_budget_bytes(settings.session_memory_mb),
                               size_of=Analysis.nbytes),
                   board=Board() if settings.classroom else None)

    # ------------------------------------------------------------ models
    def model(self, name: str | None) -> LoadedModel:
        """The model for a requested name, within the policy (RequestRefused, ModelUnavailable)."""
        name = self.policy.check_model(name, self.start.name)
        if name == self.start.name:
            return self.start
        return models.load(name, self.start.device, self.start.dtype, self.settings)

    def labelled(self, loaded: LoadedModel, text: str | None, lang: str = "en") -> LoadedModel:
        """The model scoring the labels typed (CLIP, SigLIP; bounded, RequestRefused past the limits;
        none typed: the defaults in the page's language `lang` where the model reads it); a model with
        its own classes as it is."""
        if not loaded.typed_labels:
            return loaded
        return loaded.with_labels(parse_labels(text, lang, loaded.multilingual_text))

    def weights(self, loaded: LoadedModel) -> LoadedModel:
        """A copy whose weights this process can read: on ZeroGPU the GPU copy lives in the worker,
        so work that only reads weights (position embeddings, filters) uses a CPU copy."""
        if not self.runner.zerogpu:
            return loaded
        return models.load(loaded.name, "cpu", self.runner.cpu_dtype, self.settings)

    def input_size(self, loaded: LoadedModel, text: str | None) -> tuple[int, int]:
        """The size to run at (policy), held to the memory budget for one analysis."""
        size = self.policy.check_size(text, loaded.input_size, loaded.patch_size) or loaded.input_size
        limits.check_budget(limits.Shape.of(loaded), size, self.policy.request_budget)
        return size

    def check_memory(self, opened: Opened, kind: str) -> None:
        """RequestRefused when more model work on this analysis would exceed the memory budget."""
        limits.check_budget(limits.Shape.of(opened.loaded), opened.an.seen.shape[:2], self.policy.request_budget,
                            kind=kind)

    # ------------------------------------------------------------ analyses
    def analyze(self, loaded: LoadedModel, images: list, size: tuple[int, int]) -> tuple[list[Analysis], bool, list]:
        """Analyze images (decoded here, the forward where the model lives): (analyses, ran on
        the CPU because the GPU quota is used up, per image whether its analysis was shared). An
        example photo analyzed before with this model and size is not run again: it is shared."""
        fallback = []

        def run(loaded, batch):
            ran = self.runner.call(run_model, loaded, batch)
            fallback.append(ran.on_cpu_fallback)
            return ran.value

        size = None if tuple(size) == tuple(loaded.input_size) else size
        keys = [(loaded.name, loaded.dtype, size, loaded.bound_labels, name) if (name := examples.which(image))
                else None for image in images]
        todo = [i for i, key in enumerate(keys) if key is None or key not in self.examples]
        fresh = dict(zip(todo, analyze_batch(loaded, [images[i] for i in todo], size, run=run) if todo else []))
        analyses = [self.examples.get(key, lambda i=i: fresh[i]) if key else fresh[i] for i, key in enumerate(keys)]
        return analyses, any(fallback), [i not in fresh for i in range(len(images))]

    def keep(self, loaded: LoadedModel, an: Analysis) -> Opened:
        """A new session for an analysis, opened: older sessions' analyses go when over the byte budget."""
        session = Session(uuid.uuid4().hex, loaded.name)
        self.store.put(session.key, an)
        return Opened(session, loaded, an)

    def open(self, session: Session | None) -> Opened:
        """The session's analysis and model, for one event; Expired when there is none any more."""
        an = self.store.lookup(session.key) if session else None
        if an is None:
            raise Expired()
        loaded = self.model(session.model)
        if loaded.typed_labels and an.labels:       # the labels this analysis was scored against
            loaded = loaded.with_labels(tuple(an.labels.values()))
        return Opened(session, loaded, an)

    def run(self, fn, loaded: LoadedModel, *args, kind: str = "forward"):
        """Model work other than the analysis (class maps, evidence, MAE): its value."""
        return self.runner.call(fn, loaded, *args, kind=kind).value

    # ------------------------------------------------------------ pictures
    def picture(self, image: np.ndarray | None, lossless: bool = False) -> str | None:
        """A picture as a quickly written file (JPEG per upload, PNG when lossless)."""
        return self.spool.save(image, lossless=lossless)

    def model_picture(self, loaded: LoadedModel, what: tuple, make) -> str:
        """A picture that depends only on the model, drawn and written once."""
        return self.pictures.get((loaded.name, loaded.dtype, *what), lambda: self.picture(make(), lossless=True))


def failure_message(exc: BaseException, lang: str, what: str = "request") -> str:
    """One sentence for the user, in their language: what was wrong and what to do. Unexpected
    failures are logged with a request id, which the sentence gives; exception text never is."""
    if isinstance(exc, (RequestRefused, BadImage)):
        return say(exc.key, lang, **exc.fields)
    if isinstance(exc, ModelUnavailable):
        return say("err_model", lang, model=exc.fields.get("model", ""), reason_key=exc.key)
    if isinstance(exc, Expired):
        return t("err_expired", lang)
    return t("err_internal", lang, request_id=hosting.report_failure(what, exc))
