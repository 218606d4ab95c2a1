"""Files and bytes: audio reading and resampling, atomic writes, the content cache, the
Hugging Face Hub and download helpers. Nothing here knows about tokenizers, tasks or metrics."""
