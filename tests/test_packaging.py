"""The built wheel carries every package, the CLI mapping and the shipped data."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contains_cli_and_data(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("gibbslda-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("gibbslda/__init__.py", "gibbslda/_kernels/gibbs.py", "gibbslda/_kernels/priors.py",
                     "gibbslda/_kernels/neighbours.py",
                     "gibbslda/preprocess/__init__.py", "gibbslda/preprocess/readers.py",
                     "gibbslda/preprocess/weigh.py", "gibbslda/preprocess/splits.py",
                     "gibbslda/preprocess/folder.py",
                     "gibbslda/cli/main.py", "gibbslda/cli/demo.py",
                     "gibbslda/data/online_retail/interactions.parquet",
                     "gibbslda/data/online_retail/items.parquet",
                     "gibbslda/data/online_retail/PROVENANCE.md"):
        assert required in names, required
    assert not any(name.startswith(("tests/", "bench/")) for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "gibbslda = gibbslda.cli.main:run" in zipfile.ZipFile(wheel).read(entry_points).decode()
