"""The names the configuration checks its settings against, apart from the code that computes
them (metrics.py, intervals.py and ood.py load scikit-learn and scipy): `train.py --help`,
`evaluate.py --help` and a refused override then answer without loading either."""

THRESHOLD_METRICS = ("f1", "mcc", "balanced_accuracy")
# What metrics.classification_metrics returns (besides the confusion matrix), in report order.
SCALAR_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "specificity",
    "balanced_accuracy",
    "mcc",
    "auroc",
    "auprc",
    "brier",
)
CI_METHODS = ("studentized", "bca", "percentile")  # ci.method: intervals.METHODS
# ood.method: what each out-of-distribution method scores with (the parts a detector fits and
# stores; stats/ood.py computes them); the methods are its keys
OOD_PARTS = {
    "combined": ("input", "hidden"),
    "input": ("input",),
    "hidden": ("hidden",),
    "knn": ("knn",),
    "energy": ("energy",),
}
OOD_METHODS = tuple(OOD_PARTS)
