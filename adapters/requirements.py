"""Clear errors for what a family needs beyond tokbench: model classes that only recent
transformers releases serve, and torchaudio."""

from __future__ import annotations


def transformers_class(name: str, minimum: str) -> type:
    """``transformers.<name>``, or an ImportError that names the release the adapter was tested
    with (``minimum``; older releases may serve the class too)."""
    import transformers

    cls = getattr(transformers, name, None)
    if cls is None:
        raise ImportError(f"transformers {transformers.__version__} has no {name}: it needs "
                          f"transformers >= {minimum} (pip install -U 'transformers>={minimum}')")
    return cls


def require_torchaudio(needed_by: str) -> None:
    """Import torchaudio (the authors' code of some families imports it), or stop with one line
    that says how to install the build that loads beside this torch (docs/torchaudio.md)."""
    from tokbench.meta import TokenizerSetupError

    try:
        import torchaudio  # noqa: F401
    except ImportError as exc:
        raise TokenizerSetupError(
            f"{needed_by} needs torchaudio, which is not installed ({exc}): run "
            f"PY=path/to/python bash scripts/install_torchaudio.sh (docs/torchaudio.md)") from exc
    except OSError as exc:  # a CUDA build's compiled extension beside a CPU torch
        raise TokenizerSetupError(
            f"{needed_by} needs torchaudio, which is installed but does not load beside this "
            f"torch ({exc}): run PY=path/to/python bash scripts/install_torchaudio.sh, which "
            f"installs a build that does (docs/torchaudio.md)") from exc
