"""mmbench.testing works without pytest: a submitter's plain install runs smoke_run and the oracles."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

_BLOCK_TEST_TOOLS = textwrap.dedent(
    """
    import importlib.abc, sys

    class NoTestTools(importlib.abc.MetaPathFinder):  # as if only `pip install mmbench` ran
        def find_spec(self, name, path, target=None):
            if name.partition(".")[0] in ("pytest", "_pytest", "hypothesis"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, NoTestTools())
    """
)


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env_code = _BLOCK_TEST_TOOLS + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", env_code], capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={"MMBENCH_CACHE": str(tmp_path / "cache"), "MMBENCH_OFFLINE": "1", "OMP_NUM_THREADS": "1",
             "PYTHONPATH": str(Path(__file__).parents[2])},
    )


def test_smoke_run_and_oracles_need_no_pytest(tmp_path: Path) -> None:
    proc = _run(
        """
        import sys
        from mmbench.testing import LatentOracle, columns_fingerprint, smoke_run
        from mmbench.harness.protocols import load_model

        model = load_model("mmbench.testing.oracles:LatentOracle")
        report = smoke_run(model)
        assert report.ok, report
        assert "pytest" not in sys.modules
        try:
            from mmbench.testing import BuilderTestCase
        except ModuleNotFoundError as exc:
            assert "pip install 'mmbench[dev]'" in str(exc), exc
        else:
            raise AssertionError("BuilderTestCase imported without pytest")
        print("OK", report.outcomes[0]["status"])
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "OK pass"
