"""One quick run per modality gives the metrics recorded before the modality refactor.

The numbers come from ``python scripts/record_modality_runs.py`` (tests/golden/); a
change that means to move them re-records them and says so. The comparison is to the
4th decimal: the same code on the same machine gives the same numbers.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch_geometric")

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "record_modality_runs.py"
_spec = importlib.util.spec_from_file_location("record_modality_runs", _SCRIPT)
assert _spec is not None and _spec.loader is not None
recorder = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(recorder)

GOLDEN = json.loads(recorder.GOLDEN.read_text())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    folder = tmp_path_factory.mktemp("quick-runs")
    return folder, recorder.write_inputs(folder)


@pytest.mark.parametrize("modality", sorted(recorder.QUICK_RUNS))
def test_quick_run_matches_the_recorded_metrics(modality: str, inputs: tuple[Path, dict[str, list[str]]]) -> None:
    folder, extra = inputs
    got = recorder.quick_run(modality, folder, extra)
    expected = GOLDEN[modality]
    assert got["final_loss"] == pytest.approx(expected["final_loss"], abs=1e-4)
    assert set(got["learned"]) == set(expected["learned"])
    for key, value in expected["learned"].items():
        assert got["learned"][key] == pytest.approx(value, abs=1e-4), key
    assert set(got["baselines"]) == set(expected["baselines"])
    for name, scores in expected["baselines"].items():
        for key, value in scores.items():
            assert got["baselines"][name][key] == pytest.approx(value, abs=1e-4), (name, key)
