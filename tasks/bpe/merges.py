"""Acoustic BPE and deduplication on discrete unit sequences (the engine behind task ``bpe``).

BPE is Hugging Face ``tokenizers`` (Rust), not a hand-written merge loop:

- unit ``i`` becomes the character ``chr(UNIT_OFFSET + i)`` (Supplementary Private Use Areas
  A and B: 131072 contiguous code points, none of them whitespace), so no normaliser or
  pre-tokeniser can split or change a unit string;
- every unit of the base vocabulary is in the trainer's ``initial_alphabet``, so encoding never
  meets an unknown unit (and the round-trip check would catch it if it did);
- each sequence is cut into chunks of at most ``chunk_length`` units, the same way for training
  and for measuring; the trainer is slow on very long "words". A BPE token never crosses a chunk
  boundary, so the chunk length bounds the reduction ratio and is recorded with every result;
- ``max_token_length`` bounds how many units one BPE token may span (at most that many).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

UNIT_OFFSET = 0xF0000
MAX_UNITS = 0x110000 - UNIT_OFFSET  # 131072: the last code point is U+10FFFF


def units_to_text(units: np.ndarray) -> str:
    """Unit ids -> one character per unit (exact inverse: :func:`text_to_units`)."""
    units = np.asarray(units, dtype=np.int64)
    if len(units) and (int(units.min()) < 0 or int(units.max()) >= MAX_UNITS):
        raise ValueError(f"unit ids must lie in [0, {MAX_UNITS}), got [{units.min()}, {units.max()}]")
    return (units + UNIT_OFFSET).astype("<u4").tobytes().decode("utf-32-le")


def text_to_units(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int64) - UNIT_OFFSET


def chunks(text: str, chunk_length: int) -> list[str]:
    """Consecutive pieces of at most ``chunk_length`` characters (the last may be shorter)."""
    return [text[i : i + chunk_length] for i in range(0, len(text), chunk_length)]


def dedup(units: np.ndarray) -> np.ndarray:
    """Remove consecutive repeats: ``1 1 2 2 2 3`` -> ``1 2 3``."""
    units = np.asarray(units)
    if len(units) == 0:
        return units
    keep = np.ones(len(units), dtype=bool)
    keep[1:] = units[1:] != units[:-1]
    return units[keep]


def dedup_frames(frames: np.ndarray) -> int:
    """Frames kept by deduplicating ``[Q, F]`` codes: a frame is dropped when all ``Q`` codes
    repeat the previous frame's (for one codebook this is :func:`dedup`)."""
    frames = np.asarray(frames)
    if frames.shape[1] == 0:
        return 0
    changed = np.any(frames[:, 1:] != frames[:, :-1], axis=0)
    return 1 + int(changed.sum())


@dataclass(frozen=True)
class Stream:
    """The unit sequence BPE sees for one utterance and where it came from."""

    units: np.ndarray  # 1-D unit ids in [0, base_vocab)
    frames: np.ndarray  # the selected codes [Q', F] (for frame deduplication)
    #: [Q', F]: where a token starts (multi-rate codebooks hold a slow code over several
    #: frames); None = every position (single rate)
    starts: np.ndarray | None = None

    def dedup_tokens(self) -> int:
        """Tokens kept by frame deduplication: a frame whose codes all repeat the previous
        frame's is dropped, with the tokens that start in it."""
        if self.starts is None:
            return dedup_frames(self.frames) * int(self.frames.shape[0])
        if self.frames.shape[1] == 0:
            return 0
        keep = np.ones(self.frames.shape[1], dtype=bool)
        keep[1:] = np.any(self.frames[:, 1:] != self.frames[:, :-1], axis=0)
        return int(self.starts[:, keep].sum())


def stream_vocab(codebooks: str, codebook_sizes: Sequence[int]) -> tuple[list[int], int]:
    """(selected codebook indices, base vocabulary) of a ``codebooks`` setting.

    ``first``: codebook 0 (as speech LMs model it); ``K``: codebook K; ``all``: every codebook,
    interleaved frame by frame with codebook q's codes offset by the sizes of codebooks < q, so
    the base vocabulary is the sum of the codebook sizes.
    """
    n = len(codebook_sizes)
    if codebooks == "first":
        picked = [0]
    elif codebooks == "all":
        picked = list(range(n))
    else:
        q = int(codebooks)
        if not 0 <= q < n:
            raise ValueError(f"codebooks={codebooks}: this tokenizer has codebooks 0..{n - 1}")
        picked = [q]
    base = sum(int(codebook_sizes[q]) for q in picked)
    if base > MAX_UNITS:
        raise ValueError(f"base vocabulary {base} exceeds the {MAX_UNITS} units BPE can map; "
                         "use codebooks=first or a single codebook")
    return picked, base


def select_stream(codes: np.ndarray, codebooks: str, codebook_sizes: Sequence[int],
                  strides: Sequence[int] = ()) -> Stream:
    """The unit stream of one utterance's codes ``[Q, F]`` (see :func:`stream_vocab`).

    Multi-rate codes (``strides`` = ``meta.codebook_strides``; each slow code repeated over its
    frames) give each token once: one codebook's stream is ``codes[q, ::stride]``; ``all``
    interleaves in time order, at frame f every selected codebook whose token starts there."""
    codes = np.asarray(codes, dtype=np.int64)
    picked, _ = stream_vocab(codebooks, codebook_sizes)
    frames = codes[picked]
    sizes = np.array([codebook_sizes[q] for q in picked], dtype=np.int64)
    if frames.size and (frames.min() < 0 or np.any(frames.max(axis=1) >= sizes)):
        raise ValueError(f"codes out of range for codebook sizes {sizes.tolist()}")
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    steps = [int(strides[q]) for q in picked] if strides else [1] * len(picked)
    if set(steps) == {1}:
        return Stream((frames + offsets[:, None]).T.reshape(-1), frames)
    if len(picked) == 1:
        one = frames[:, :: steps[0]]
        return Stream(one.reshape(-1) + offsets[0], one)
    starts = np.arange(frames.shape[1])[None, :] % np.array(steps)[:, None] == 0
    units = (frames + offsets[:, None]).T[starts.T]  # frame-major: time order
    return Stream(units, frames, starts)


class UnitBPE:
    """A BPE vocabulary over unit ids, trained with Hugging Face ``tokenizers``."""

    def __init__(self, tokenizer, base_vocab: int, chunk_length: int):
        self.tokenizer = tokenizer
        self.base_vocab = base_vocab
        self.chunk_length = chunk_length
        vocab = tokenizer.get_vocab()
        self._pieces = [""] * len(vocab)
        for piece, idx in vocab.items():
            self._pieces[idx] = piece

    @classmethod
    def train(
        cls, sequences: Sequence[np.ndarray], base_vocab: int, vocab_size: int, *,
        chunk_length: int = 256, max_token_length: int | None = 32, min_frequency: int = 2,
    ) -> UnitBPE:
        """Learn merges until the vocabulary (base units + merged tokens) has ``vocab_size``
        entries, or no pair occurs ``min_frequency`` times any more."""
        from tokenizers import Tokenizer, models, trainers

        if vocab_size < base_vocab:
            raise ValueError(f"vocabulary size {vocab_size} is below the base vocabulary {base_vocab}")
        if chunk_length < 1:
            raise ValueError(f"chunk_length must be >= 1, got {chunk_length}")
        if base_vocab > MAX_UNITS:
            raise ValueError(f"base vocabulary {base_vocab} exceeds {MAX_UNITS} units")
        tok = Tokenizer(models.BPE())  # no normaliser, no pre-tokeniser: a chunk is one word
        alphabet = list(units_to_text(np.arange(base_vocab)))
        if max_token_length is not None and max_token_length < 2:
            raise ValueError(f"max_token_length must be >= 2 (or None), got {max_token_length}")
        # tokenizers only queues a merged pair when its length is strictly below its
        # max_token_length (models/bpe/word.rs: `len + new_s.len < max_length`), so ask for one
        # more to allow tokens of exactly max_token_length units (tested).
        limits = {} if max_token_length is None else {"max_token_length": max_token_length + 1}
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
            special_tokens=[], initial_alphabet=alphabet, **limits,
        )
        pieces = [c for s in sequences for c in chunks(units_to_text(s), chunk_length)]
        tok.train_from_iterator(pieces, trainer, length=len(pieces))
        if tok.get_vocab_size() < base_vocab:
            raise RuntimeError(f"BPE vocabulary lost base units ({tok.get_vocab_size()} < {base_vocab})")
        return cls(tok, base_vocab, chunk_length)

    def truncated(self, vocab_size: int) -> UnitBPE:
        """The vocabulary training with target ``vocab_size`` would have learned on the same data.

        BPE merges greedily in a fixed order and the target size only decides when to stop, so
        a smaller vocabulary is a prefix of the merge list: the merges up to the one that adds
        the ``vocab_size``-th token (a merge may rebuild an existing token and add nothing).
        This lets a sweep train once, at its largest size (equality is tested).
        """
        import json

        from tokenizers import Tokenizer, models

        if vocab_size < self.base_vocab:
            raise ValueError(f"vocabulary size {vocab_size} is below the base vocabulary {self.base_vocab}")
        if vocab_size >= self.vocab_size:
            return self
        model = json.loads(self.tokenizer.to_str())["model"]
        vocab = {piece: idx for piece, idx in model["vocab"].items() if idx < vocab_size}
        merges: list[tuple[str, str]] = []
        for merge in model["merges"]:
            a, b = merge if isinstance(merge, list) else merge.split(" ")
            if model["vocab"][a + b] >= vocab_size:
                break
            merges.append((a, b))
        if len(vocab) != vocab_size:
            raise RuntimeError(f"token ids are not contiguous below {vocab_size}")
        return UnitBPE(Tokenizer(models.BPE(vocab=vocab, merges=merges)), self.base_vocab,
                       self.chunk_length)

    @property
    def vocab_size(self) -> int:
        """The size actually learned (at most the requested size)."""
        return len(self._pieces)

    def encode(self, sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
        """BPE token ids of each unit sequence (chunked exactly as in training)."""
        spans: list[tuple[int, int]] = []
        pieces: list[str] = []
        for s in sequences:
            cs = chunks(units_to_text(s), self.chunk_length)
            spans.append((len(pieces), len(pieces) + len(cs)))
            pieces.extend(cs)
        encoded = self.tokenizer.encode_batch_fast(pieces, add_special_tokens=False) if pieces else []
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encoded]
        return [np.concatenate(ids[a:b]) if b > a else np.zeros(0, dtype=np.int64)
                for a, b in spans]

    def decode(self, ids: np.ndarray) -> np.ndarray:
        """Unit ids spelled by BPE token ids (the inverse of :meth:`encode`)."""
        pieces = self._pieces
        return text_to_units("".join([pieces[i] for i in np.asarray(ids).tolist()]))

    def token_lengths(self) -> np.ndarray:
        """Units per vocabulary entry, by token id."""
        return np.array([len(p) for p in self._pieces], dtype=np.int64)


def holdout_split(
    ids: Sequence[str], train_fraction: float, seed: int = 0, by: str = "utterance",
    speakers: Mapping[str, str | None] | None = None,
) -> tuple[list[str], list[str]]:
    """A deterministic (train, held-out) split of utterance ids.

    Items are ordered by a hash of (seed, id) (or of (seed, speaker) with ``by="speaker"``, so
    held-out speakers are unseen in training) and the first ones go to training until
    ``train_fraction`` of the utterances are there. Each side keeps at least one utterance
    (one speaker) when there are two or more. The result does not depend on the input order.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    if by not in ("utterance", "speaker"):
        raise ValueError(f"split must be 'utterance' or 'speaker', got {by!r}")

    def key(text: str) -> str:
        return hashlib.sha256(f"{seed}\0{text}".encode()).hexdigest()

    ids = sorted(ids)
    if by == "utterance":
        groups = [[i] for i in sorted(ids, key=key)]
    else:
        speakers = speakers or {}
        missing = [i for i in ids if not speakers.get(i)]
        if missing:
            raise ValueError(f"split=speaker needs speaker labels; {len(missing)} utterances have "
                             f"none (e.g. {missing[0]!r}); use split=utterance")
        by_speaker: dict[str, list[str]] = {}
        for i in ids:
            by_speaker.setdefault(str(speakers[i]), []).append(i)
        groups = [by_speaker[s] for s in sorted(by_speaker, key=key)]
    target = train_fraction * len(ids)
    train: list[str] = []
    n_groups = 0
    for g in groups:
        if len(train) >= target or n_groups == len(groups) - 1:
            break
        train.extend(g)
        n_groups += 1
    if not train and groups:
        train, n_groups = list(groups[0]), 1
    held = [i for g in groups[n_groups:] for i in g]
    return sorted(train), sorted(held)
