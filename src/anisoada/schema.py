"""The names of every stored table and column: the contract between writers and readers.

Sweeps and reproduction targets write their results through the store using these names; the
report reads them using these names and nothing else (it never imports the code that produced
them). A column renamed here is renamed for both sides at once.
"""

from __future__ import annotations

__all__ = [
    "GROUP_COLUMNS",
    "IDENTITY_COLUMNS",
    "METRIC_COLUMNS",
    "NO_VERDICT",
    "SELECTION_COLUMNS",
    "SELECTION_METRIC",
    "TIE",
    "TIMING_COLUMNS",
    "VERDICT_COLUMNS",
    "files",
]

#: Columns that identify a run in a sweep's rows (with ``step`` they identify a row).
#: ``dataset`` is the problem's name (a LIBSVM set, a synthetic problem, an instruction data
#: set with its model, a user's problem); ``optimizer`` the sweep's label for it. Each row also
#: records ``optimizer_name`` (the registry key) and ``optimizer_options`` (canonical JSON).
IDENTITY_COLUMNS = ("dataset", "optimizer", "batch_size", "seed", "lr")

#: The groups within which a learning rate is selected.
GROUP_COLUMNS = ("dataset", "optimizer", "batch_size")

#: Metrics a run may evaluate, in the order tables show them. ``train_loss`` is the objective at
#: the current parameters on the training set (or a fixed subset of it); ``test_loss`` and
#: ``test_accuracy`` are on a held-out test set (logistic); ``eval_loss`` on a held-out split
#: (language models); ``batch_loss`` is the mean mini-batch loss since the previous row.
METRIC_COLUMNS = ("train_loss", "test_loss", "test_accuracy", "eval_loss", "batch_loss")

#: The metric the learning rate is selected on.
SELECTION_METRIC = "train_loss"

#: Row columns that depend on the machine's speed: the only ones that differ between two runs of
#: the same sweep (compare tables without them).
TIMING_COLUMNS = ("train_time",)

#: Columns of a sweep's selection table (one row per group), in order; metrics a sweep's runs
#: do not evaluate are absent.
SELECTION_COLUMNS = (
    *GROUP_COLUMNS,
    "best_lr",
    "train_loss",
    "train_loss_std",
    "train_loss_min",
    "train_loss_max",
    "final_train_loss",
    "test_loss",
    "test_accuracy",
    "eval_loss",
    "final_batch_loss",
    "seeds",
    "lrs_tried",
    "lrs_diverged",
    "lrs_unstable",
    "lr_min",
    "lr_max",
    "extensions_up",
    "extensions_down",
    "at_edge",
)


#: Columns of a sweep's verdict table (``verdicts.csv``), one row per (problem, batch size,
#: optimizer other than the baseline): the compared metric (``gap`` = loss − f*, or ``loss``),
#: the paired seeds, the mean and range over seeds of both, the geometric-mean ratio with its
#: 95% interval and p-value (paired t-test on per-seed log ratios), and the verdict (the winner's
#: label, or ``tie``) with a note saying why a tie is one.
VERDICT_COLUMNS = (
    "dataset",
    "batch_size",
    "optimizer",
    "baseline",
    "metric",
    "seeds",
    "value",
    "value_min",
    "value_max",
    "baseline_value",
    "baseline_min",
    "baseline_max",
    "ratio",
    "ratio_low",
    "ratio_high",
    "p_value",
    "verdict",
    "note",
)


#: A verdict that is neither optimizer: the seed interval contains 1, or one optimizer has no
#: selected learning rate. (Not "n/a": CSV readers take that for a missing value.)
TIE = "tie"
NO_VERDICT = "no verdict"


class files:
    """File names inside a sweep directory and a reproduction target's directory."""

    #: The sweep's resolved configuration and provenance (JSON) and the same configuration as a
    #: TOML file that ``anisoada sweep`` accepts back.
    SWEEP_JSON = "sweep.json"
    SWEEP_TOML = "sweep.toml"
    #: Every row of every run, and the per-group selection (parquet; the selection also as CSV).
    RESULTS = "results"
    SELECTION = "selection"
    #: Per (problem, batch size, optimizer): the paired comparison with the baseline; and each
    #: problem's known minimum ``f*`` (empty when unknown).
    VERDICTS = "verdicts"
    REFERENCES = "references"
    #: One row per run (per lane): its tail loss, final loss, largest late rise and flags, as
    #: the selection rule scored it.
    SCORES = "scores"
    #: A reproduction target's record: target, preset, wall time, files, provenance.
    REPRODUCTION_JSON = "reproduction.json"
