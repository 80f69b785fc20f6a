import subprocess
import sys

import anisoada
from anisoada.cli import main


def test_version_flag_prints_package_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert capsys.readouterr().out.strip() == f"anisoada {anisoada.__version__}"


def test_help_lists_program_name():
    out = subprocess.run(
        [sys.executable, "-m", "anisoada", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("usage: anisoada")


def test_bound_reads_measured_distances_and_says_when_a_box_cannot_favour_sgd(tmp_path, capsys):
    import json

    import numpy as np

    from anisoada.data import save_libsvm

    rng = np.random.default_rng(0)
    X = (rng.random((300, 12)) < 0.3).astype(float)
    y = np.where(X @ rng.normal(size=12) + 0.3 * rng.normal(size=300) > 0, 1.0, -1.0)
    save_libsvm(tmp_path / "d.svm", X, y)
    stem = tmp_path / "m"
    assert main(["measure", "--task", "logreg", "--dataset", str(tmp_path / "d.svm"),
                 "--out", str(stem)]) == 0  # fmt: skip
    capsys.readouterr()
    record = json.loads((tmp_path / "m.json").read_text())["provenance"]
    argv = ["bound", "--from", str(tmp_path / "m.npz"), "--batch-sizes", "8,64", "--samples",
            "1000"]  # fmt: skip
    assert main([*argv, "--distances", "measured", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["inputs"]["D_inf"] == record["D_inf"]
    assert payload["inputs"]["D_2"] == record["D_2"]
    assert [row["iterations"] for row in payload["rows"][::4]] == [125, 15]  # ⌊N/M⌋, integers
    # In a box the term ratios are ρ_L, ρ_σ ≤ 1: the table says its "better" is an identity.
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "never the larger" in out and " 125 " in out
    assert main([*argv, "--distances", "measured", "--D-inf", "2"]) == 2
    assert "drop --D-inf" in capsys.readouterr().err
    assert main(["bound", "--L", "1,2", "--sigma", "1,1", "--distances", "measured"]) == 2
    assert "needs a measurement with D_∞ and D_2" in capsys.readouterr().err
