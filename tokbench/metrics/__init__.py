"""Metric declarations (docs/protocol.md): the single source of truth for what a metric means.

Reports, radar charts and comparisons read these declarations (direction, range, unit, level,
aggregation); nothing guesses from a metric's name. A name never changes meaning: a new
definition gets a new name. The computations live in the submodules of this package.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from tokbench.registry import metrics as _registry

Direction = Literal["higher", "lower", "none"]
Level = Literal["utterance", "corpus"]
# mean: mean of utterance values; ratio: sum(numerator)/sum(denominator) x scale, e.g. corpus
# WER = total edits / total reference words; value: a single corpus-level figure.
Aggregation = Literal["mean", "ratio", "value"]
Category = Literal["quality", "efficiency", "statistic"]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    description: str
    direction: Direction
    unit: str
    level: Level = "utterance"
    aggregation: Aggregation = "mean"
    lo: float | None = None  # declared range: used to normalise charts, never to clip data
    hi: float | None = None
    category: Category = "quality"
    scale: float = 1.0  # ratio aggregation: multiply the corpus ratio by this (100 for percent)
    # Hard limits of a valid value when they are wider than the chart range (lo, hi): ESTOI is
    # a correlation and can be slightly negative. Records outside these are invalid.
    valid_lo: float | None = None
    valid_hi: float | None = None

    @property
    def valid_range(self) -> tuple[float | None, float | None]:
        """The values a correct computation can give (defaults to the declared range)."""
        lo = self.valid_lo if self.valid_lo is not None else self.lo
        hi = self.valid_hi if self.valid_hi is not None else self.hi
        return lo, hi

    @property
    def higher_is_better(self) -> bool | None:
        return {"higher": True, "lower": False}.get(self.direction)

    @property
    def arrow(self) -> str:
        return {"higher": "↑", "lower": "↓"}.get(self.direction, "")

    def normalise(self, value: float) -> float | None:
        """Map ``value`` to [0, 1] over the declared range, 1 = best. None without a range."""
        if self.lo is None or self.hi is None or self.direction == "none":
            return None
        x = (value - self.lo) / (self.hi - self.lo)
        x = min(1.0, max(0.0, x))
        return x if self.direction == "higher" else 1.0 - x

    def to_dict(self) -> dict:
        return asdict(self)


def declare(spec: MetricSpec) -> MetricSpec:
    return _registry.add(spec.name, spec)


def get_metric(name: str) -> MetricSpec:
    return _registry.get(name)


def all_metrics() -> list[MetricSpec]:
    return [spec for _, spec in _registry.items()]


_M = MetricSpec
for _spec in [
    _M("wer", "word error rate of the protocol's ASR (Whisper unless asr.backend says otherwise) "
       "vs the reference text (EnglishTextNormalizer)",
       "lower", "%", aggregation="ratio", lo=0.0, hi=100.0, scale=100.0,
       valid_hi=float("inf")),  # insertions can take WER past 100 %
    _M("cer", "character error rate (spaces included) of the protocol's ASR vs the reference text",
       "lower", "%", aggregation="ratio", lo=0.0, hi=100.0, scale=100.0, valid_hi=float("inf")),
    _M("pesq_wb", "wide-band PESQ (ITU-T P.862.2) at 16 kHz", "higher", "MOS-LQO", lo=1.0, hi=4.644),
    _M("pesq_nb", "narrow-band PESQ (P.862) on signals resampled to 8 kHz", "higher", "MOS-LQO",
       lo=1.0, hi=4.55),
    _M("stoi", "short-time objective intelligibility (classic)", "higher", "", lo=0.0, hi=1.0,
       valid_lo=-1.0),
    _M("estoi", "extended STOI", "higher", "", lo=0.0, hi=1.0, valid_lo=-1.0),
    _M("secs", "speaker embedding cosine similarity (Resemblyzer) of output vs input",
       "higher", "cosine", lo=0.0, hi=1.0, valid_lo=-1.0),
    _M("secs_target", "SECS of converted speech vs the target speaker's prompt", "higher",
       "cosine", lo=0.0, hi=1.0, valid_lo=-1.0),
    _M("secs_source", "SECS of converted speech vs the source utterance (timbre leakage)",
       "lower", "cosine", lo=0.0, hi=1.0, valid_lo=-1.0),
    _M("gpe", "gross pitch error: share of mutually voiced frames with |f0 ratio - 1| > 0.2 (WORLD Harvest)",
       "lower", "ratio", lo=0.0, hi=1.0),
    _M("vde", "voicing decision error: share of frames whose voicing differs", "lower", "ratio",
       lo=0.0, hi=1.0),
    _M("ffe", "F0 frame error: share of frames with a voicing or gross pitch error", "lower",
       "ratio", lo=0.0, hi=1.0),
    _M("f0_corr", "Pearson correlation of F0 over mutually voiced frames (P.Corr)", "higher", "r",
       lo=-1.0, hi=1.0),
    _M("mel_l1", "mean |log mel(out) - log mel(in)| (80 Slaney mels, n_fft 1024, hop 256)",
       "lower", "log-mel", lo=0.0, hi=3.0, valid_hi=float("inf")),
    _M("length_ratio", "output duration / reference duration at 16 kHz (1 = same length; beyond "
       "one frame the extra part is scored against zero-padding, a missing part as silence)",
       "none", "x", lo=0.0, hi=None, category="statistic"),
    _M("bitrate_nominal", "frame_rate x sum of log2(codebook size) over codebooks", "lower",
       "bit/s", level="corpus", aggregation="value", lo=None, hi=None, category="efficiency"),
    _M("bitrate_entropy", "frame_rate x sum over codebooks of the corpus unigram entropy", "lower",
       "bit/s", level="corpus", aggregation="value", category="efficiency"),
    _M("token_rate", "tokens per second of audio (all codebooks); corpus: total tokens / total seconds",
       "lower", "tokens/s", aggregation="ratio", category="efficiency"),
    _M("rtf_encode", "encode seconds per audio second, after warm-up; corpus: total / total",
       "lower", "s/s", aggregation="ratio", category="efficiency"),
    _M("rtf_decode", "decode seconds per audio second, after warm-up; corpus: total / total",
       "lower", "s/s", aggregation="ratio", category="efficiency"),
]:
    declare(_spec)


# --- Token statistics and the bpe task (tokbench/token_stats.py, tasks/bpe.py) ---------------
# All corpus level, one value per run. `param` carries the codebook index (0-based) for the
# four token statistics, and the target BPE vocabulary size for the bpe_* metrics.
for _spec in [
    _M("token_entropy", "unigram entropy of one codebook's tokens over the corpus (param = codebook index)",
       "none", "bit/token", level="corpus", aggregation="value", category="statistic"),
    _M("token_cond_entropy", "H(X_t | X_t-1) of one codebook's tokens from corpus bigram counts, pairs "
       "within utterances (param = codebook index)", "none", "bit/token", level="corpus",
       aggregation="value", category="statistic"),
    _M("codebook_utilisation", "share of one codebook's codes used at least once in the corpus "
       "(param = codebook index)", "higher", "ratio", level="corpus", aggregation="value", lo=0.0,
       hi=1.0, category="statistic"),
    _M("token_perplexity", "2 ** token_entropy (param = codebook index)", "none", "tokens",
       level="corpus", aggregation="value", category="statistic"),
    _M("bpe_reduction", "original tokens / BPE tokens on the held-out part (param = target BPE "
       "vocabulary size)", "higher", "x", level="corpus", aggregation="value", category="efficiency"),
    _M("bpe_tokens_per_s", "BPE tokens per second of held-out audio (param = target vocabulary size)",
       "lower", "tokens/s", level="corpus", aggregation="value", category="efficiency"),
    _M("bpe_lossless", "share of held-out utterances whose BPE encoding decodes to the exact original "
       "tokens; must be 1 (param = target vocabulary size)", "higher", "ratio", level="corpus",
       aggregation="value", lo=0.0, hi=1.0, category="statistic"),
    _M("bpe_vocab_size", "vocabulary size BPE learned (below param when no pair is frequent "
       "enough any more; param = target vocabulary size)", "none", "tokens", level="corpus",
       aggregation="value", category="statistic"),
    _M("dedup_reduction", "original tokens / tokens after removing consecutive repeats (held-out part)",
       "higher", "x", level="corpus", aggregation="value", category="efficiency"),
]:
    declare(_spec)


# --- probe (tasks/probe.py): lightweight heads trained on frozen tokens ---------------------
for _spec in [
    _M("probe_spk_acc", "speaker-ID accuracy of a mean-pooling + MLP probe trained on the tokens "
       "(per test utterance 1 if right, else 0; the mean is the accuracy)", "higher", "",
       lo=0.0, hi=1.0),
    _M("probe_cer", "character error rate (spaces included) of a 2-layer BiLSTM CTC probe trained "
       "on the tokens, greedy decoding, EnglishTextNormalizer", "lower", "%", aggregation="ratio",
       lo=0.0, hi=100.0, scale=100.0),
    _M("probe_wer", "word error rate of the CTC content probe (as probe_cer)", "lower", "%",
       aggregation="ratio", lo=0.0, hi=100.0, scale=100.0),
]:
    declare(_spec)


# --- Issue 17: metrics parity with DATES, DASB, VERSA (docs/metrics.md; selection groups in
# tokbench/metrics/selection.py). wer/cer/dwer/dcer use the protocol's ASR back-end (asr.backend).
for _spec in [
    _M("dwer", "WER of the output's ASR text vs the ASR text of the reference audio (DASB dWER)",
       "lower", "%", aggregation="ratio", lo=0.0, hi=100.0, scale=100.0, valid_hi=float("inf")),
    _M("dcer", "CER of the output's ASR text vs the ASR text of the reference audio", "lower", "%",
       aggregation="ratio", lo=0.0, hi=100.0, scale=100.0, valid_hi=float("inf")),
    _M("si_sdr", "scale-invariant SDR (Le Roux et al. 2019, no mean removal; fast-bss-eval)",
       "higher", "dB", lo=-10.0, hi=30.0, valid_lo=-float("inf"), valid_hi=float("inf")),
    _M("sdr", "BSS Eval SDR, 512-tap distortion filter (fast-bss-eval = mir_eval)", "higher", "dB",
       lo=-10.0, hi=30.0, valid_lo=-float("inf"), valid_hi=float("inf")),
    _M("mstft_distance", "multi-resolution STFT distance: L1 of magnitudes + L1 of log10 power, "
       "windows 2048 and 512 (DAC / Codec-SUPERB)", "lower", "", lo=0.0, hi=10.0, valid_hi=float("inf")),
    _M("mcd", "mel cepstral distortion as VERSA mcd_f0 (sp2mc order 39, c0 included, no DTW)",
       "lower", "dB", lo=0.0, hi=20.0, valid_hi=float("inf")),
    _M("f0_rmse_cents", "RMS of 1200 log2(f0_out / f0_in) over frames voiced in both (Harvest)",
       "lower", "cents", lo=0.0, hi=600.0, valid_hi=float("inf")),
    _M("spk_sim_wavlm", "cosine of WavLM x-vectors (microsoft/wavlm-base-plus-sv) of output and "
       "input", "higher", "cosine", lo=0.0, hi=1.0, valid_lo=-1.0),
    _M("spk_sim_ecapa", "cosine of WavLM-large + ECAPA-TDNN speaker embeddings (UniSpeech "
       "wavlm_large_finetune.pth, Seed-TTS-eval's SIM) of output and input", "higher", "cosine",
       lo=0.0, hi=1.0, valid_lo=-1.0),
    _M("dnsmos_sig", "DNSMOS P.835 speech quality (SIG), official ONNX model, non-intrusive",
       "higher", "MOS", lo=1.0, hi=5.0, valid_lo=0.0, valid_hi=6.0),
    _M("dnsmos_bak", "DNSMOS P.835 background noise quality (BAK), non-intrusive", "higher", "MOS",
       lo=1.0, hi=5.0, valid_lo=0.0, valid_hi=6.0),
    _M("dnsmos_ovrl", "DNSMOS P.835 overall quality (OVRL), non-intrusive", "higher", "MOS",
       lo=1.0, hi=5.0, valid_lo=0.0, valid_hi=6.0),
    _M("dnsmos_p808", "DNSMOS P.808 overall MOS, official ONNX model, non-intrusive", "higher",
       "MOS", lo=1.0, hi=5.0, valid_lo=0.0, valid_hi=6.0),
    # 2 x (a mean of an unbounded projection) + 3: no hard limits, but finite
    _M("utmos", "UTMOS22 strong naturalness MOS (official checkpoint, SpeechMOS release), "
       "non-intrusive", "higher", "MOS", lo=1.0, hi=5.0, valid_lo=-float("inf"),
       valid_hi=float("inf")),
]:
    declare(_spec)


# --- invariance (tasks/invariance): token stability under meaning-preserving perturbations ---
# param = "<perturbation>/cb<q>" or "<perturbation>/frames" (all codebooks as one symbol).
for _spec in [
    _M("ued", "unit edit distance: Levenshtein distance between the tokens of the original and "
       "of the perturbed audio / the original's length (Gat et al. 2023; param = perturbation/"
       "codebook)", "lower", "ratio", lo=0.0, hi=1.0, category="statistic",
       valid_hi=float("inf")),  # above 1 when the perturbed copy is longer (speed 0.9)
    _M("ued_dedup", "unit edit distance after collapsing consecutive repeats on both sides / the "
       "collapsed original's length (param = perturbation/codebook)", "lower", "ratio", lo=0.0,
       hi=1.0, category="statistic", valid_hi=float("inf")),
    _M("code_change_rate", "share of the original's frames whose code differs at the same frame "
       "index, for time-aligned perturbations (gain, noise, sub-frame shift, re-encoding)",
       "lower", "ratio", lo=0.0, hi=1.0, category="statistic"),
]:
    declare(_spec)


# --- lm (tasks/lm): how hard the tokens are to model with a small causal transformer --------
# Per held-out utterance with param = the training seed; per codebook "<seed>/cb<q>".
# Only bits per second compare across tokenizers (frame rates and vocabularies differ), so it
# alone has a direction; the per-token figures are descriptive.
for _spec in [
    _M("lm_bits_per_token", "cross-entropy of a small causal transformer LM trained on the tokens "
       "(held-out speakers), bits per token; corpus figure = total bits / total tokens; not "
       "comparable across vocabularies or frame rates (see lm_bits_per_second)",
       "none", "bit/token", aggregation="ratio", category="statistic"),
    _M("lm_bits_per_second", "the LM's cross-entropy in bits per second of audio (all codebooks; "
       "comparable across frame rates and codebook counts); corpus = total bits / total seconds",
       "lower", "bit/s", aggregation="ratio", category="statistic"),
    _M("lm_perplexity", "2 ** (held-out corpus bits per token) of the token LM", "none", "tokens",
       level="corpus", aggregation="value", category="statistic"),
    _M("lm_unigram_gap", "unigram entropy of the held-out tokens (per codebook, averaged over "
       "codebooks) minus the LM's bits per token: what context buys", "none", "bit/token",
       level="corpus", aggregation="value", category="statistic"),
]:
    declare(_spec)


# --- Valid values (issue 13: records are validated on load) ----------------------------------
# The declared range [lo, hi] scales charts; it is not always a hard limit (WER exceeds 100%
# with insertions, a log-mel distance has no top, a cosine can be negative). These are the
# limits no correct value can pass: a record outside them is refused on load (with file and
# line), as a PESQ of 99 would be. Metrics not listed here use their declaration's valid range
# (MetricSpec.valid_range: valid_lo/valid_hi, else lo/hi); an undeclared name is only checked to
# be a finite number.
VALID_RANGES: dict[str, tuple[float | None, float | None]] = {
    "wer": (0.0, None), "cer": (0.0, None), "probe_wer": (0.0, None), "probe_cer": (0.0, None),
    "pesq_wb": (1.0, 4.65), "pesq_nb": (1.0, 4.56),
    "stoi": (-1.0, 1.0), "estoi": (-1.0, 1.0),
    "secs": (-1.0, 1.0), "secs_target": (-1.0, 1.0), "secs_source": (-1.0, 1.0),
    "gpe": (0.0, 1.0), "vde": (0.0, 1.0), "ffe": (0.0, 1.0), "f0_corr": (-1.0, 1.0),
    "mel_l1": (0.0, None),
    "bitrate_nominal": (0.0, None), "bitrate_entropy": (0.0, None), "token_rate": (0.0, None),
    "rtf_encode": (0.0, None), "rtf_decode": (0.0, None),
    "token_entropy": (0.0, None), "token_cond_entropy": (0.0, None),
    "codebook_utilisation": (0.0, 1.0), "token_perplexity": (1.0, None),
    "bpe_reduction": (0.0, None), "bpe_tokens_per_s": (0.0, None), "bpe_lossless": (0.0, 1.0),
    "bpe_vocab_size": (0.0, None), "dedup_reduction": (0.0, None), "probe_spk_acc": (0.0, 1.0),
}


def valid_range(name: str) -> tuple[float | None, float | None]:
    """(lowest, highest) valid value of metric ``name``; None: no limit on that side."""
    if name in VALID_RANGES:
        return VALID_RANGES[name]
    if name not in _registry:
        return (None, None)
    lo, hi = get_metric(name).valid_range
    inf = float("inf")
    return (None if lo in (None, -inf) else lo, None if hi in (None, inf) else hi)
