"""Which overrides never change what a run computes: resume= accepts them (train/resume.py), and
a search leaves them out of what makes it (search/settings.py)."""

# Settings that change how fast a run goes or where it reads from, never what it computes; the
# split and feature-store checks catch data that changed behind a new path.
HARMLESS = {
    "resume",
    "verbose",
    "num_workers",
    "cpu_threads",
    "eval_batch_size",
    "features_on_gpu",
    "gpu_memory_margin_gb",
    "data.root",
    "data.cache_dir",
    "data.memory_budget_gb",
    "split.dir",
    "optimized_metric",
    "optimized_metrics",
}
# Whole groups of such settings: where the run is reported (trackers, a search's trial), never
# what it computes.
HARMLESS_GROUPS = ("logger.", "trial.")


def is_harmless(key: str) -> bool:
    """Whether the setting `key` (dotted) never changes what a run computes."""
    return key in HARMLESS or key.startswith(HARMLESS_GROUPS)
