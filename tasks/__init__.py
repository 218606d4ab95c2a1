"""Built-in tasks (importable as ``tokbench.tasks``); each module is imported only when used."""

from tokbench.registry import commands, register, tasks

register(tasks, "recon", "tokbench.tasks.recon:Reconstruction",
         "encode, decode and score against the original (WER, PESQ, STOI, SECS, pitch, mel, bitrate)")
register(tasks, "bpe", "tokbench.tasks.bpe:BPEStudy",
         "acoustic BPE and deduplication: length reduction vs vocabulary size; token entropy, "
         "codebook utilisation, perplexity")
register(tasks, "probe", "tokbench.tasks.probe:Probe",
         "train lightweight heads on frozen tokens: speaker ID accuracy, CTC content CER/WER")
register(tasks, "vc", "tokbench.tasks.vc:VoiceConversion",
         "voice conversion: decode each utterance with another speaker's prompt (WER, SECS to "
         "target and source, F0 correlation)")

# `tokbench score`: the recon metrics on audio made elsewhere (outputs matched to references by stem)
register(commands, "score", "tokbench.tasks.score:score_command",
         "score audio made elsewhere against references, with the recon metrics")
