"""Running a task: the runner (resolution, store, ranks), the task base class, batching and the
token cache, the shared decode-and-score loop and its metric pool, and torchrun sharding."""
