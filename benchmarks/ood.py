"""Which out-of-distribution score finds what, and does alpha hold? (issue 34; the table is in
docs/ood.md.)

    python benchmarks/ood.py                       # 10 seeds, 2048 wide, about 10 minutes
    python benchmarks/ood.py --seeds 2 --width 256 # a quick look

The demo data are isotropic, unlike real embeddings, so each seed makes a world with the
structure real embeddings have: a large mean, a low-rank part (24 latent factors with decaying
scales, loaded on every feature), a different noise level per feature, and genomes of their own
(a genome's latent position is its class's plus its own offset; genome sizes log-uniform 6-600
rows, `simulators.sizes`). It trains the VirNucPro MLP on it (AdamW, 6 epochs), fits each
detector on the training rows with the project's code (train/ood_fit.py) and scores, with the
code evaluate.py runs (evaluate/ood.py), the validation rows (the conformal reference) and:

- (a) the test side: new genomes of the two known classes (in distribution);
- (b) unseen: genomes of a class of their own, with a latent centre of its own and 4 directions
  of variation the training data never had;
- (c) shift: new genomes of the known classes moved 2 genome-SDs along one latent direction (a
  covariate shift: the same kinds of sequence from elsewhere);
- (d) other model: the test rows with their features permuted and signed around the training
  mean, as files from another embedding model of the same width would look (same mean and
  norms, another correlation structure).

Per score: detection AUROC of (b), (c) and (d) against (a), the share of (a) flagged at alpha
0.01 and 0.05, means over seeds (min-max in brackets). Besides the methods `ood.method` offers,
the exact Ledoit-Wolf Mahalanobis distances (scikit-learn's `LedoitWolf`, full precision matrix)
on the input and the hidden layer, against which the low-rank ones are measured. The last line is
the default method's: `ood: auroc_unseen=X auroc_shift=Y auroc_other_model=W false_flag=Z`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from scipy.linalg import cholesky, solve_triangular
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score

from virnucpro_trainer.config.schema import TrainConfig
from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.evaluate.ood import BatchScorer, row_ood, with_validation
from virnucpro_trainer.model import VirNucProMLP, predict_scores
from virnucpro_trainer.stats.names import OOD_METHODS as METHODS
from virnucpro_trainer.stats.names import OOD_PARTS as PARTS
from virnucpro_trainer.stats.ood import conformal_p
from virnucpro_trainer.train.ood_fit import features, fit_detector

from _common import machine, say, table
from simulators import sizes

POPULATIONS = ("test", "unseen", "shift", "other_model")
RANK, NEW_DIRECTIONS = 24, 4  # latent factors; directions only the unseen class varies in
CENTRE_SD, GENOME_SD, ROW_SD, GENOME_OFFSET = 0.3, 1.0, 0.7, 0.5  # latent spreads; own offset
NOISE = 0.25  # each feature's own noise SD (log-normal around this): at 2048 wide, the low-rank
# part then holds about half of a row's variance
EXACT = ("input (exact Ledoit-Wolf)", "hidden (exact Ledoit-Wolf)")


class World:
    """One seed's embedding model: mean, loadings, per-feature noise, class centres."""

    def __init__(self, rng: np.random.Generator, width: int):
        self.rng, self.width = rng, width
        self.mean = rng.normal(0, 2, width)
        q, _ = np.linalg.qr(rng.normal(size=(width, RANK + NEW_DIRECTIONS)))
        self.loadings = q[:, :RANK] * (6 / np.sqrt(np.arange(1, RANK + 1)))
        self.new_loadings = q[:, RANK:] * 3  # directions only the unseen class varies in
        self.noise = np.exp(rng.normal(np.log(NOISE), 0.5, width))
        self.centres = rng.normal(0, CENTRE_SD, (2, RANK))

    def genomes(self, total: int, centres: np.ndarray, shift=None, new=False):
        """Rows of whole genomes (about `total`), each of a class drawn at random: (rows,
        labels)."""
        n = sizes(self.rng, max(1, total // 60), 6, 600, True)
        blocks, labels = [], []
        for size in n:
            label = self.rng.integers(len(centres))
            latent = centres[label] + self.rng.normal(0, GENOME_SD, RANK)
            if shift is not None:
                latent = latent + shift
            latent = latent + self.rng.normal(0, ROW_SD, (size, RANK))
            own = self.rng.normal(0, GENOME_OFFSET, self.width) * self.noise  # the genome's own
            x = self.mean + own + latent @ self.loadings.T
            x += self.rng.normal(size=(size, self.width)) * self.noise
            if new:
                x += self.rng.normal(0, 1, (size, NEW_DIRECTIONS)) @ self.new_loadings.T
            blocks.append(x)
            labels.append(np.full(size, label % 2))
        return np.concatenate(blocks).astype(np.float32), np.concatenate(labels)

    def other_model(self, x: np.ndarray, center: np.ndarray) -> np.ndarray:
        """The rows as another embedding model of the same width might give them."""
        order = self.rng.permutation(self.width)
        signs = self.rng.choice([-1.0, 1.0], self.width)
        return (center + (x - center)[:, order] * signs).astype(np.float32)


def train(x: np.ndarray, y: np.ndarray, seed: int, epochs: int) -> VirNucProMLP:
    torch.manual_seed(seed)
    model = VirNucProMLP(x.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(256):
            if len(idx) < 2:
                continue
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def exact_scores(model, source, rows, parts_rows: dict, batch: int) -> dict[str, dict]:
    """The exact Ledoit-Wolf Mahalanobis distance (nearest class mean) on the input and on the
    hidden layer, for the rows of each population (and validation)."""
    fitted = features(model, source, rows["train"], batch, {"input", "hidden"})
    out = {}
    for name, part in zip(EXACT, ("input", "hidden"), strict=True):
        f, y = fitted[part].astype(np.float64), fitted["labels"]
        means = np.stack([f[y == c].mean(0) for c in (0, 1)])
        lw = LedoitWolf(assume_centered=True, store_precision=False).fit(f - means[y])
        lower = cholesky(lw.covariance_, lower=True)
        out[name] = {}
        for pop, pop_rows in parts_rows.items():
            g = features(model, source, pop_rows, batch, {part})[part].astype(np.float64)
            # LedoitWolf.mahalanobis, through the covariance's Cholesky factor (its precision
            # matrix by eigendecomposition takes longer than everything else here)
            d = [np.square(solve_triangular(lower, (g - m).T, lower=True)).sum(0) for m in means]
            out[name][pop] = np.min(d, axis=0)
    return out


def one_seed(seed: int, args) -> dict[str, dict[str, float]]:
    """Each method's AUROCs and false-flag shares in one world."""
    rng = np.random.default_rng(seed)
    world = World(rng, args.width)
    sets = {
        "train": world.genomes(args.rows, world.centres),
        "val": world.genomes(args.rows // 2, world.centres),
        "test": world.genomes(args.rows // 2, world.centres),
        "unseen": world.genomes(
            args.rows // 4, rng.normal(0, 2.5 * CENTRE_SD, (1, RANK)), new=True
        ),
        "shift": world.genomes(args.rows // 4, world.centres, shift=unit(rng) * 2 * GENOME_SD),
    }
    model = train(*sets["train"], seed, args.epochs)
    center = sets["train"][0].mean(0)
    sets["other_model"] = (world.other_model(sets["test"][0], center), sets["test"][1])
    x = torch.from_numpy(np.concatenate([sets[k][0] for k in sets]))
    y = torch.from_numpy(np.concatenate([sets[k][1] for k in sets]))
    bounds = np.cumsum([0] + [len(sets[k][1]) for k in sets])
    rows = {k: torch.arange(bounds[i], bounds[i + 1]) for i, k in enumerate(sets)}
    source = BatchSource(x, y, torch.device("cpu"))
    batch, found, fitted = 4096, {}, {}
    for method in METHODS:  # each part fitted once; combined is input and hidden together
        if len(PARTS[method]) == 1:
            fitted[method] = fit_detector(model, source, rows["train"], method, args.max_rows,
                                          seed, batch)  # fmt: skip
    for method in METHODS:
        parts = {p: fitted[p]["parts"][p] for p in PARTS[method]}
        scorer = BatchScorer(model, {"method": method, "parts": parts})
        raw = {}
        for pop in ("val", *POPULATIONS):
            with scorer:
                raw[pop] = predict_scores(model, source, rows[pop], batch, extra=scorer).extra
        with_val = with_validation({"method": method, "parts": parts}, raw["val"], scorer.parts)
        scorer = BatchScorer(model, with_val)
        scored = {pop: row_ood([scorer], [raw[pop]], None) for pop in POPULATIONS}
        found[method] = measures({p: (s.score, s.p) for p, s in scored.items()})
    pops = {pop: rows[pop] for pop in ("val", *POPULATIONS)}
    for name, by_pop in exact_scores(model, source, rows, pops, batch).items():
        p = {pop: conformal_p(by_pop[pop], by_pop["val"]) for pop in POPULATIONS}
        found[name] = measures({pop: (by_pop[pop], p[pop]) for pop in POPULATIONS})
    return found


def unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=RANK)
    return v / np.linalg.norm(v)


def measures(by_pop: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Detection AUROC of each shifted population against the test side; the test side's share
    flagged at 0.01 and 0.05."""
    test_score, test_p = by_pop["test"]
    out = {}
    for pop in POPULATIONS[1:]:
        score = by_pop[pop][0]
        truth = np.r_[np.zeros(len(test_score)), np.ones(len(score))]
        out[f"auroc_{pop}"] = float(roc_auc_score(truth, np.r_[test_score, score]))
    out["false_flag_0.01"] = float(np.mean(test_p <= 0.01))
    out["false_flag_0.05"] = float(np.mean(test_p <= 0.05))
    return out


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--rows", type=int, default=8000, help="training rows (about)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--max-rows", type=int, default=TrainConfig().ood.max_rows)
    return parser


def main() -> None:
    args = arguments().parse_args()
    torch.set_num_threads(torch.get_num_threads())
    start, results = time.perf_counter(), []
    for seed in range(args.seeds):
        say(f"seed {seed + 1} of {args.seeds}")
        results.append(one_seed(seed, args))
    print(f"machine: {machine()}")
    print(
        f"{args.seeds} seeds; width {args.width}; about {args.rows:,} training rows, half as "
        f"many each for validation and test; {args.epochs} epochs; "
        f"{time.perf_counter() - start:.0f} s"
    )
    keys = [f"auroc_{p}" for p in POPULATIONS[1:]] + ["false_flag_0.01", "false_flag_0.05"]
    header = ["score", "AUROC unseen (b)", "AUROC shift (c)", "AUROC other model (d)"]
    table(header + ["false flag, alpha 0.01", "false flag, alpha 0.05"], rows(results, keys))
    default = TrainConfig().ood.method
    mean = {k: statistics.mean(r[default][k] for r in results) for k in keys}
    print(
        f"ood: auroc_unseen={mean['auroc_unseen']:.3f} auroc_shift={mean['auroc_shift']:.3f} "
        f"auroc_other_model={mean['auroc_other_model']:.3f} "
        f"false_flag={mean['false_flag_0.01']:.4f}"
    )


def rows(results: list[dict], keys: list[str]):
    for method in results[0]:
        cells = []
        for key in keys:
            values = [r[method][key] for r in results]
            digits = 4 if key.startswith("false") else 3
            cells.append(
                f"{statistics.mean(values):.{digits}f} "
                f"({min(values):.{digits}f}-{max(values):.{digits}f})"
            )
        yield [method, *cells]


if __name__ == "__main__":
    main()
