"""Task ``lm``: a small causal LM trained on the tokens (``task``); the model, its windows and
trainer live in ``model``."""

from tokbench.tasks.lm.task import TokenLM

__all__ = ["TokenLM"]
