"""``anisoada data``: list the registered LIBSVM data sets and fetch them into the data home."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from anisoada.cli._common import add_json, print_json
from anisoada.data import DATA_HOME_ENV, LIBSVM_DATASETS, data_home, load_libsvm, locate_libsvm


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``data`` subcommand with ``list`` and ``fetch``."""
    parser = subparsers.add_parser(
        "data",
        help="list or fetch the LIBSVM data sets used by the logistic-regression experiments",
        description=(
            f"LIBSVM binary data sets live in <data home>/libsvm (data home: --data-home, else "
            f"${DATA_HOME_ENV}, else ~/.cache/anisoada). 'list' shows which are present; 'fetch' "
            "downloads missing files (checksum-verified when a sha256 is known), parses them and "
            "writes the .npz cache."
        ),
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="registered data sets and whether they are present")
    listing.add_argument("--data-home", type=Path, help="data directory")
    add_json(listing)
    listing.set_defaults(func=_list)

    fetch = actions.add_parser("fetch", help="download (if missing), parse and cache data sets")
    fetch.add_argument("names", nargs="+", metavar="NAME", choices=sorted(LIBSVM_DATASETS))
    fetch.add_argument(
        "--split", choices=("train", "test", "all"), default="all", help="which split"
    )
    fetch.add_argument("--data-home", type=Path, help="data directory")
    fetch.add_argument(
        "--no-download",
        action="store_true",
        help="only parse and cache files already present; never touch the network",
    )
    fetch.set_defaults(func=_fetch)


def _list(args: argparse.Namespace) -> int:
    folder = data_home(args.data_home) / "libsvm"
    if args.json:
        rows = []
        for name, dataset in sorted(LIBSVM_DATASETS.items()):
            for split, entry in dataset.splits.items():
                found = locate_libsvm(name, split=split, data_home=args.data_home)
                rows.append(
                    {
                        "name": name,
                        "split": split,
                        "rows": entry.n_samples,
                        "features": dataset.n_features,
                        "sha256_known": bool(entry.sha256),
                        "file": entry.file_name,
                        "path": None if found is None else found,
                        "bundled": found is not None and found.parent != folder,
                    }
                )
        print_json({"data_home": folder, "datasets": rows})
        return 0
    print(f"data home: {folder}")
    print(f"{'name':<16} {'split':<6} {'rows':>9} {'features':>10}  {'sha256':<7} present")
    for name, dataset in sorted(LIBSVM_DATASETS.items()):
        for split, entry in dataset.splits.items():
            found = locate_libsvm(name, split=split, data_home=args.data_home)
            where = "- (" + entry.file_name + ")"
            if found is not None:
                where = found.name if found.parent == folder else f"{found.name} (bundled)"
            print(
                f"{name:<16} {split:<6} {entry.n_samples:>9,} {dataset.n_features:>10,}  "
                f"{'known' if entry.sha256 else 'shape':<7} {where}"
            )
    return 0


def _fetch(args: argparse.Namespace) -> int:
    for name in args.names:
        dataset = LIBSVM_DATASETS[name]
        splits = list(dataset.splits) if args.split == "all" else [args.split]
        for split in splits:
            if split not in dataset.splits:
                raise ValueError(
                    f"{name} has no split {split!r}; available: {list(dataset.splits)}"
                )
            X, y = load_libsvm(
                name, split=split, data_home=args.data_home, download=not args.no_download
            )
            positives = int(np.sum(y > 0))
            print(
                f"{name} ({split}): {X.shape[0]:,} x {X.shape[1]:,}, nnz {X.nnz:,}, "
                f"{positives:,} positive / {X.shape[0] - positives:,} negative"
            )
    return 0
