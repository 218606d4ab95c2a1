"""Clear errors for model classes that only recent transformers releases serve."""

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
