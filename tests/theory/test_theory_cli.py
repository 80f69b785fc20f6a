"""``anisoada bound``: printed table and JSON agree with the library; bad input exits 2 clearly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from anisoada.cli import main
from anisoada.theory import predict, rho_L, rho_sigma, term_ratios

L = [4.0, 1.0, 1.0, 1.0, 0.5]
SIGMA = [1.0, 1.0, 0.5, 0.25, 0.25]
SIZES = [1, 8, 64, 512, 4096]


def _csv(values) -> str:
    return ",".join(str(v) for v in values)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(["bound", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_prints_the_table_with_verdicts(capsys):
    status, out, _ = _run(
        capsys,
        "--L",
        _csv(L),
        "--sigma",
        _csv(SIGMA),
        "--batch-sizes",
        _csv(SIZES),
        "--budget",
        "1e6",
    )
    assert status == 0
    assert "up to absolute constants" in out
    table = predict(L=L, sigma=SIGMA, D_inf=1.0, batch_sizes=SIZES, budget=1e6)
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["batch_size"])
    body = lines[header + 1 :]
    assert len(body) == len(table)
    for line, (_, row) in zip(body, table.iterrows()):
        fields = line.split()
        assert float(fields[0]) == row.batch_size
        assert fields[-1] == row.verdict  # better / reference / tie
        assert float(fields[-2]) == pytest.approx(row.ratio_to_sgd, abs=5e-4)
        assert float(fields[-4]) == pytest.approx(row.bound, rel=5e-4)
        assert fields[-3] == row.dominant
    assert {"better", "reference", "tie"} <= {line.split()[-1] for line in body}
    assert f"ρ_L={rho_L(L):.4g}" in out and f"ρ_σ={rho_sigma(SIGMA):.4g}" in out


def test_json_matches_the_library(capsys):
    status, out, _ = _run(
        capsys,
        "--L",
        _csv(L),
        "--sigma",
        _csv(SIGMA),
        "--batch-sizes",
        _csv(SIZES),
        "--budget",
        "1e6",
        "--D-inf",
        "0.5",
        "--D-2",
        "0.8",
        "--lambda-max",
        "1.5",
        "--json",
    )
    assert status == 0
    payload = json.loads(out)
    table = predict(
        L=L, sigma=SIGMA, D_inf=0.5, D_2=0.8, batch_sizes=SIZES, budget=1e6, lambda_max=1.5
    )
    assert len(payload["rows"]) == len(table)
    for got, (_, want) in zip(payload["rows"], table.iterrows()):
        assert got["variant"] == want.variant
        for key in ("bias", "noise", "bound", "ratio_to_sgd", "ratio_to_sgd_lambda_max"):
            assert got[key] == pytest.approx(want[key], rel=1e-12)
        assert (
            got["verdict"] == want.verdict and got["verdict_lambda_max"] == want.verdict_lambda_max
        )
    ratios = term_ratios(L, SIGMA, setting="convex", D_inf=0.5, D_2=0.8)
    assert payload["ratios"]["bias_ratio"] == pytest.approx(ratios.bias)
    assert payload["ratios"]["noise_ratio"] == pytest.approx(ratios.noise)
    assert payload["ratios"]["rho_D"] == pytest.approx(0.8 / (math.sqrt(5) * 0.5))
    assert payload["inputs"] == {
        "D_inf": 0.5, "distances": "box", "D_2": 0.8, "delta": None, "lambda_max": 1.5
    }  # fmt: skip
    critical = table.drop_duplicates("variant").set_index("variant").critical_batch_size
    assert payload["critical_batch_sizes"] == pytest.approx(critical.to_dict())
    assert payload["norms"]["L_l1"] == sum(L) and payload["d"] == 5


def test_reads_measured_vectors_and_sidecar_scalars(tmp_path, capsys):
    stem = tmp_path / "a9a_summary"
    L0, L1 = np.array(L) / 2, np.array([0.1, 0, 0, 0, 0])
    np.savez(stem.with_suffix(".npz"), L=np.array(L), sigma=np.array(SIGMA), L0=L0, L1=L1)
    stem.with_suffix(".json").write_text(json.dumps({"d": 5, "lambda_max": 0.9, "rho_L": 0.3}))
    status, out, _ = _run(
        capsys,
        "--from",
        str(stem.with_suffix(".npz")),
        "--setting",
        "nonconvex",
        "--delta",
        "2",
        "--batch-sizes",
        "1,100",
        "--budget",
        "1e4",
        "--json",
    )
    assert status == 0
    payload = json.loads(out)
    assert payload["inputs"]["lambda_max"] == 0.9
    assert payload["source"].endswith("a9a_summary.npz")
    table = predict(
        L=L,
        sigma=SIGMA,
        setting="nonconvex",
        delta=2.0,
        lambda_max=0.9,
        L0=L0,
        L1=L1,
        batch_sizes=[1, 100],
        budget=1e4,
    )
    assert [row["variant"] for row in payload["rows"]] == table.variant.tolist()
    assert [row["bound"] for row in payload["rows"]] == pytest.approx(table.bound.tolist())
    # The stem or the JSON sibling name the same summary.
    for name in (str(stem), str(stem.with_suffix(".json"))):
        _, again, _ = _run(
            capsys,
            "--from",
            name,
            "--setting",
            "nonconvex",
            "--delta",
            "2",
            "--batch-sizes",
            "1,100",
            "--budget",
            "1e4",
            "--json",
        )
        assert json.loads(again)["rows"] == payload["rows"]
    # --no-lambda-max drops the sidecar's λ_max; the convex setting ignores the stored L0/L1.
    status, out, _ = _run(
        capsys,
        "--from",
        str(stem.with_suffix(".npz")),
        "--no-lambda-max",
        "--json",
        "--batch-sizes",
        "1",
        "--budget",
        "10",
    )
    variants = {row["variant"] for row in json.loads(out)["rows"]}
    assert variants == {"adagrad", "sgd", "adagrad_norm"}


def test_vectors_from_text_files(tmp_path, capsys):
    (tmp_path / "L.txt").write_text("4 1\n1 1\n0.5\n")
    (tmp_path / "s.txt").write_text(_csv(SIGMA))
    _, out_file, _ = _run(
        capsys, "--L", f"@{tmp_path / 'L.txt'}", "--sigma", f"@{tmp_path / 's.txt'}", "--json"
    )
    _, out_inline, _ = _run(capsys, "--L", _csv(L), "--sigma", _csv(SIGMA), "--json")
    assert json.loads(out_file)["rows"] == json.loads(out_inline)["rows"]


def test_plot_option_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="--plot needs the 'report' extra (matplotlib)")
    path = tmp_path / "curves.png"
    status, out, _ = _run(capsys, "--L", _csv(L), "--sigma", _csv(SIGMA), "--plot", str(path))
    assert status == 0 and f"wrote {path}" in out
    assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--L", "1,-2", "--sigma", "1,1"], "L must be non-negative"),
        (["--L", "1,2", "--sigma", "1,nan"], "sigma must be finite"),
        (["--L", "1,2", "--sigma", "1"], "sigma has 1 entries but L has 2"),
        (
            ["--L", "1,2", "--sigma", "1,1", "--batch-sizes", "1,8", "--budget", "4"],
            "exceeds the sample budget",
        ),
        (["--L", "1,2", "--sigma", "1,1", "--D-inf", "0"], "D_inf must be a finite positive"),
        (["--L", "1,2", "--sigma", "1,1", "--setting", "nonconvex"], "--delta"),
        (["--L", "1,2", "--sigma", "1,1", "--delta", "1"], "--delta enters only the nonconvex"),
        (["--L", "1,2"], "give --from FILE.npz, or both --L and --sigma"),
        (["--L", "1,2", "--sigma", "1,1", "--L0", "1,1"], "give both --L0 and --L1"),
        (["--from", "/nonexistent/summary.npz"], "no such file"),
    ],
)
def test_bad_input_exits_2_with_a_message(capsys, argv, message):
    status, out, err = _run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith("anisoada bound: error:") and message in err


def test_npz_without_sigma_is_reported(tmp_path, capsys):
    path = tmp_path / "partial.npz"
    np.savez(path, L=np.ones(3))
    status, _, err = _run(capsys, "--from", str(path))
    assert status == 2 and "has no array 'sigma'" in err


def test_sidecar_dimension_mismatch_is_reported(tmp_path, capsys):
    path = tmp_path / "s.npz"
    np.savez(path, L=np.ones(3), sigma=np.ones(3))
    path.with_suffix(".json").write_text(json.dumps({"d": 4}))
    status, _, err = _run(capsys, "--from", str(path))
    assert status == 2 and "d=4" in err


def test_unparsable_list_is_a_usage_error(capsys):
    assert main(["bound", "--L", "1,x", "--sigma", "1,1"]) == 2
    error = capsys.readouterr().err
    assert "expected numbers" in error and len(error.strip().splitlines()) == 1
