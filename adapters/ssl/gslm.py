"""The published GSLM k-means models for HuBERT-base layer 6 (K = 50, 100, 200), as plain arrays.

GSLM (Lakhotia et al., "On Generative Spoken Language Modeling from Raw Audio", TACL 2021)
released its k-means quantisers as scikit-learn ``MiniBatchKMeans`` objects saved with joblib,
on fairseq's official download site (URLs in :data:`GSLM_KMEANS_URLS`, listed in fairseq's
``examples/textless_nlp/gslm/speech2unit`` README). The features they quantise are fairseq
HuBERT-base (``hubert_base_ls960.pt``) layer 6 outputs of un-normalised 16 kHz audio; the
Hugging Face ``facebook/hubert-base-ls960`` checkpoint holds the same weights.

**Security.** Unpickling a file can run arbitrary code. This converter is meant only for the
files from that official source, and it reduces the risk further: its unpickler resolves only
an allow-list of names (numpy array/dtype/scalar and random-state constructors, joblib's array
wrapper for plain numeric arrays only, a few harmless builtins), maps every ``sklearn.*`` name to an inert placeholder (no
scikit-learn code runs and scikit-learn need not be installed), and refuses anything else.
Only ``cluster_centers_`` is kept; the result is a plain ``.npz`` that is never unpickled again.
"""

from __future__ import annotations

import datetime as _dt
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from tokbench.adapters.ssl.kmeans import CentroidsError, centroids_cache_path, save_centroids
from tokbench.io.files import file_digest

GSLM_MODEL = "hubert-base"
GSLM_LAYER = 6
GSLM_KMEANS_URLS: dict[int, str] = {
    50: "https://dl.fbaipublicfiles.com/textless_nlp/gslm/hubert/km50/km.bin",
    100: "https://dl.fbaipublicfiles.com/textless_nlp/gslm/hubert/km100/km.bin",
    200: "https://dl.fbaipublicfiles.com/textless_nlp/gslm/hubert/km200/km.bin",
}
GSLM_CITATION = ("Lakhotia et al., On Generative Spoken Language Modeling from Raw Audio, "
                 "TACL 2021")

_ALLOWED: frozenset[tuple[str, str]] = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.random._pickle", "__randomstate_ctor"), ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"), ("numpy.random._mt19937", "MT19937"),
    ("numpy.random._pcg64", "PCG64"), ("numpy.random.mtrand", "RandomState"),
    ("copyreg", "_reconstructor"), ("_codecs", "encode"),
    ("builtins", "object"), ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice"),
    ("builtins", "complex"), ("builtins", "bytearray"),
})


class _Inert:
    """Stands in for any scikit-learn class: keeps the pickled state, runs no library code."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.__dict__["_args"] = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)


class UnsafePickleError(CentroidsError):
    """The pickle refers to something outside the allow-list; nothing from it was executed."""


def _unpickler_class() -> type:
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    class PlainArrayWrapper(NumpyArrayWrapper):
        """joblib unpickles object arrays with a fresh, unrestricted pickle.load: refuse them."""

        def read(self, unpickler: Any, *args: Any, **kwargs: Any) -> Any:
            if self.dtype.hasobject:
                raise UnsafePickleError("refusing an array of Python objects (joblib would "
                                        "unpickle it without restrictions)")
            return super().read(unpickler, *args, **kwargs)

    class RestrictedUnpickler(NumpyUnpickler):
        def find_class(self, module: str, name: str) -> Any:
            if module == "sklearn" or module.startswith("sklearn."):
                return _Inert
            if (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
                return PlainArrayWrapper
            if (module, name) in _ALLOWED:
                return super().find_class(module, name)
            raise UnsafePickleError(f"refusing to unpickle {module}.{name}: not part of a "
                                    "scikit-learn k-means model (is this the official GSLM file?)")

    return RestrictedUnpickler


def read_kmeans_centers(path: str | Path) -> np.ndarray:
    """``cluster_centers_`` ``[K, D]`` of a joblib-saved scikit-learn (MiniBatch)KMeans file.

    Only for files from the official GSLM source (see the module notes on unpickling).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    cls = _unpickler_class()
    with path.open("rb") as fh:
        head = fh.read(1)
        if head != b"\x80":
            raise CentroidsError(f"{path} is not an uncompressed pickle (the GSLM files are); "
                                 "refusing to guess its format")
        fh.seek(0)
        try:
            unpickler = cls(str(path), fh, ensure_native_byte_order=True)
        except TypeError:  # joblib < 1.3 has no ensure_native_byte_order
            unpickler = cls(str(path), fh)
        try:
            obj = unpickler.load()
        except UnsafePickleError:
            raise
        except Exception as exc:
            raise CentroidsError(f"{path}: cannot read it as a joblib k-means file ({exc})") from None
    centers = getattr(obj, "cluster_centers_", None)
    if not isinstance(centers, np.ndarray) or centers.ndim != 2:
        raise CentroidsError(f"{path} holds no [K, D] cluster_centers_ (got {type(obj).__name__})")
    return np.ascontiguousarray(centers, dtype=np.float32)


def download_gslm_kmeans(k: int, dest: str | Path, timeout: float = 60.0) -> Path:
    """Fetch the official GSLM k-means file for ``k`` to ``dest`` (a file path)."""
    if k not in GSLM_KMEANS_URLS:
        raise ValueError(f"GSLM published HuBERT-base k-means for K in {sorted(GSLM_KMEANS_URLS)}, not {k}")
    url = GSLM_KMEANS_URLS[k]
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, tmp.open("wb") as fh:
            while block := resp.read(1 << 20):
                fh.write(block)
    except (urllib.error.URLError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise ConnectionError(f"cannot download {url} ({exc}): download it elsewhere and run "
                              f"`tokbench convert-gslm --k {k} --input km.bin`") from None
    tmp.replace(dest)
    return dest


def convert_gslm_kmeans(src: str | Path, k: int, out: str | Path | None = None) -> Path:
    """Convert the GSLM k-means file ``src`` (K = ``k``) to a tokbench centroid file.

    Writes ``out`` or the cache file the ``hubert-base-l6-km<k>`` presets read.
    """
    if k not in GSLM_KMEANS_URLS:
        raise ValueError(f"GSLM published HuBERT-base k-means for K in {sorted(GSLM_KMEANS_URLS)}, not {k}")
    src = Path(src).expanduser()
    centers = read_kmeans_centers(src)
    if centers.shape[0] != k:
        raise CentroidsError(f"{src} has {centers.shape[0]} centres, not K={k}")
    provenance = {
        "model": GSLM_MODEL, "repo_id": "facebook/hubert-base-ls960",
        "reference_checkpoint": "fairseq hubert_base_ls960.pt (same weights)",
        "layer": GSLM_LAYER, "layer_definition": "output of transformer block L (1-based)",
        "normalize": False, "normalize_from": "GSLM feature reader (un-normalised input)",
        "k": k, "seed": None, "init": "see GSLM (scikit-learn MiniBatchKMeans)",
        "inertia": None, "source": "gslm", "url": GSLM_KMEANS_URLS[k],
        "source_sha256": file_digest(src), "citation": GSLM_CITATION,
        "data": {"dataset": "as published by GSLM (see the paper)"},
        "converted": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    path = Path(out) if out is not None else centroids_cache_path(GSLM_MODEL, GSLM_LAYER, k)
    return save_centroids(path, centers, provenance)
