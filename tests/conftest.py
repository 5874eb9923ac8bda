"""Markers for the fast loop (`make test-fast`, ``pytest -m "not slow"``); CI (`make test`) runs
every test.

- ``lammps``: every test under tests/lammps (it starts the real ``lmp``).
- ``slow``: the tests below, measured at about 1 s or more each (``pytest --durations=0`` on a
  2-core machine), and every LAMMPS test but the few in ``LAMMPS_QUICK`` (each ``lmp`` run loads
  torch: 2.5 s or more), which keep a broken plugin from passing the fast loop. A test file may
  also mark its own tests with ``@pytest.mark.slow``.

A name here that no longer exists marks nothing: the fast loop gets slower, never wrong.
"""

from __future__ import annotations

import pytest

#: test functions (all their parameters) or whole files, relative to tests/
SLOW = {
    "python/train/test_distributed.py",  # torchrun, 2 processes
    "python/test_bundled_models.py::test_quickstart_with_the_real_bundled_model",
    "python/test_side_effects.py::test_plots_leave_matplotlib_alone",
    "python/test_threads.py::test_thread_counts_agree_within_the_promise",
    "python/label/test_runs.py",  # saddle searches in worker processes
    "python/label/test_cli.py",
    "python/label/test_hostile_label.py::test_a_killed_worker_says_how_to_continue",
    "python/label/test_hostile_label.py::test_dask_at_an_http_server_fails_with_a_timeout",
    "python/train/test_train.py::test_resume_continues_exactly",
    "python/train/test_cv.py::test_cv_runs_scores_and_resumes",
    "python/nn/test_smooth.py::test_ensemble_members_mean_and_std_rows",
    "python/nn/test_fused_ops.py::test_loading_without_the_operators_names_the_library",
    "python/nn/test_fused_ops.py::test_models_built_without_the_operators_export_plain_ops",
    "python/test_quench.py::test_calculator_quench_modes",
    "python/explain/test_explain.py::test_cli_writes_csv_json_and_pictures",
    "python/test_neighbors.py::test_glass_train0_matches_ase",  # the 8000-atom data set
    "python/test_predict.py::test_console_script",
    "python/test_hostile_inputs.py::test_console_script_error_is_one_line",
    "python/test_neighbors_cpp.py",
}

#: LAMMPS tests left in the fast loop: the plugin loads, and one run agrees with Python
LAMMPS_QUICK = {
    "lammps/test_plugin_load.py::test_entry_point_announces_the_plugin",
    "lammps/test_plugin_load.py::test_auto_load_lists_the_style",
    "lammps/test_compute_exact.py::test_orthogonal_box[1]",
    "lammps/test_compute_setups.py::test_missing_lammps_is_a_failure_not_a_skip",
}


def _relative(nodeid: str) -> str:
    return nodeid.removeprefix("tests/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        node = _relative(item.nodeid)
        path, _, name = node.partition("::")
        function = path + "::" + name.split("[", 1)[0]
        if path.startswith("lammps/"):
            item.add_marker(pytest.mark.lammps)
            if node not in LAMMPS_QUICK:
                item.add_marker(pytest.mark.slow)
        elif path in SLOW or function in SLOW:
            item.add_marker(pytest.mark.slow)
