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
