"""Built-in tasks (importable as ``tokbench.tasks``); each module is imported only when used."""

from tokbench.registry import commands, register, tasks

# recon first: the leaderboard opens on the first registered task that has results.
register(tasks, "recon", "tokbench.tasks.recon:Reconstruction",
         "encode, decode and score against the original (WER, PESQ, STOI, SECS, pitch, mel, bitrate)")
register(tasks, "bpe", "tokbench.tasks.bpe.task:BPEStudy",
         "acoustic BPE and deduplication: length reduction vs vocabulary size; token entropy, "
         "codebook utilisation, perplexity")
register(tasks, "probe", "tokbench.tasks.probe.task:Probe",
         "train lightweight heads on frozen tokens: speaker ID accuracy, CTC content CER/WER")
register(tasks, "vc", "tokbench.tasks.vc.task:VoiceConversion",
         "voice conversion: decode each utterance with another speaker's prompt (WER, SECS to "
         "target and source, F0 correlation)")
register(tasks, "invariance", "tokbench.tasks.invariance.task:Invariance",
         "token stability under meaning-preserving perturbations (noise, babble, gain, sub-frame "
         "shift, speed, pitch, reverb): unit edit distance, code change rate")
register(tasks, "lm", "tokbench.tasks.lm.task:TokenLM",
         "a small causal transformer LM trained on the tokens: held-out cross-entropy in bits per "
         "token and per second, perplexity, gap to the unigram entropy")

# `tokbench score`: the recon metrics on audio made elsewhere (outputs matched to references by stem)
register(commands, "score", "tokbench.tasks.score:score_command",
         "score audio made elsewhere against references, with the recon metrics")
