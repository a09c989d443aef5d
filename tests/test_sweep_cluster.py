"""Sweeps on an executor: ``sweep(..., executor=...)`` and ``msdprof sweep --dask ADDRESS``.

The rule (issue 32): a sweep on any ``concurrent.futures.Executor`` -- a ``ProcessPoolExecutor``, a
Dask cluster's -- gives exactly the result of ``jobs=1``: the same rows in the same order, the same
skipped configurations, points and counts.  The cluster is a Dask ``LocalCluster`` of two worker
threads in this process (its scheduler on a TCP port, so that the command line connects to it as
to a remote one); the networks are the tiny ones of tests/test_sweep.py, so the file runs in
seconds.  Bad addresses and a missing Dask are one-line errors naming ``--dask``."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import sys
import time

import pytest
from distributed import Client, LocalCluster

from msdnet import OptionError, Options
from msdprof.analysis import sweep as sweep_module
from msdprof.analysis.sweep import (
    MAX_CONFIGURATIONS, MAX_EXECUTOR_CONFIGURATIONS, WorkerError, check_grid, sweep,
)
from msdprof.cli import main
from msdprof.cli import sweep as cli_sweep

BASE = Options(nChannels=4, growthRate=2, grFactor=(1, 2), bnFactor=(1, 2), base=1)
SIZE = 16  # pixels, as tests/test_sweep.py
# 96 configurations, 24 of them skipped (growthRate 3 and 5 times grFactor 1-3 are odd): on two
# workers, 16 chunks of 6, twice the 8 chunks a sweep keeps in flight on two workers.
GRID = {"nBlocks": "1:3", "stepmode": "even,lin_grow", "step": "1,2", "growthRate": "2:5",
        "grFactor": "1-2,1-3"}
ARGS = ["--nChannels", "4", "--bnFactor", "1-2", "--base", "1", "--input-size", "16",
        "--nBlocks", "1:3", "--stepmode", "even,lin_grow", "--step", "1,2", "--growthRate", "2:5",
        "--grFactor", "1-2,1-3", "--format", "json"]
FILTERS = [
    {},
    {"max_macs": "4M", "exit_budget": "2M", "points": True},  # 63 kept, 9 over
    {"pareto": True},
    {"sort": "-total_params", "top": 5},
    {"top": 7},
]


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
                      dashboard_address=":0") as local, Client(local, set_as_default=False) as client:
        yield local, client


@pytest.fixture(scope="module")
def local():
    return {i: sweep(GRID, BASE, input_size=SIZE, **FILTERS[i]) for i in range(len(FILTERS))}


def run(capsys, *argv):
    code = main(["sweep", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_grid_has_skipped_configurations_and_each_filter_drops_some(local):
    assert (local[0].size, local[0].counted, len(local[0].skipped)) == (96, 72, 24)
    assert (len(local[1].rows), local[1].filtered, len(local[1].points)) == (63, 9, 72)
    assert (len(local[2].rows), local[2].dominated) == (4, 68)


def test_a_sweep_on_a_process_pool_equals_the_local_one(local):  # first: the pool forks this process
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        assert sweep(GRID, BASE, input_size=SIZE, executor=pool) == local[0]


def test_a_sweep_on_a_thread_pool_equals_the_local_one(local):
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        assert sweep(GRID, BASE, input_size=SIZE, executor=pool, **FILTERS[1]) == local[1]


@pytest.mark.parametrize("filters", range(len(FILTERS)), ids=[str(f) for f in FILTERS])
def test_a_dask_sweep_equals_the_local_one(cluster, local, filters):
    result = sweep(GRID, BASE, input_size=SIZE, executor=cluster[1].get_executor(), **FILTERS[filters])
    assert result == local[filters]  # rows in the same order, skipped, points, counts


def test_the_executor_is_left_running_after_the_sweep(cluster):
    executor = cluster[1].get_executor()
    sweep({"nBlocks": "1:2"}, BASE, input_size=SIZE, executor=executor)
    assert executor.submit(sum, [1, 2]).result() == 3


class Recording(concurrent.futures.Executor):
    """Counts each chunk at once in this process, and records how many were submitted and not yet
    read at most."""

    def __init__(self, workers: int):
        self._max_workers = workers
        self.submitted = self.most_unread = 0
        self.unread: set[concurrent.futures.Future] = set()

    def submit(self, fn, /, *args, **kwargs):
        future = concurrent.futures.Future()
        future.set_result(fn(*args, **kwargs))
        result = future.result
        future.result = lambda timeout=None: (self.unread.discard(future), result(timeout))[1]
        self.unread.add(future)
        self.submitted += 1
        self.most_unread = max(self.most_unread, len(self.unread))
        return future


@pytest.mark.parametrize("grid", [GRID, {**GRID, "nChannels": "4:13"}], ids=["96", "960"])
def test_at_most_four_chunks_a_worker_are_in_flight_whatever_the_grid_size(grid):
    executor = Recording(workers=2)
    result = sweep(grid, BASE, input_size=SIZE, executor=executor, top=3)
    assert result == sweep(grid, BASE, input_size=SIZE, top=3)
    assert executor.submitted > 8 and executor.most_unread == 2 * sweep_module._IN_FLIGHT == 8


def test_progress_is_told_of_every_configuration_on_an_executor(cluster):
    calls = []
    sweep(GRID, BASE, input_size=SIZE, executor=cluster[1].get_executor(),
          progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (96, 96) and [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_jobs_beside_an_executor_is_an_option_error(cluster):
    with pytest.raises(OptionError, match="give jobs or an executor") as error:
        sweep(GRID, BASE, input_size=SIZE, jobs=2, executor=cluster[1].get_executor())
    assert error.value.option == "jobs"


def test_an_executor_takes_grids_past_the_local_limit_up_to_its_own():
    grid = {"nChannels": "1:400", "growthRate": "1:400"}  # 160,000 configurations
    with pytest.raises(OptionError, match=f"at most {MAX_CONFIGURATIONS} in one sweep "
                                          f"\\({MAX_EXECUTOR_CONFIGURATIONS} on a cluster"):
        check_grid(grid)
    assert len(check_grid(grid, MAX_EXECUTOR_CONFIGURATIONS)[0][1]) == 400
    with pytest.raises(OptionError, match="the grid would have 16000000 configurations; at most "
                                          f"{MAX_EXECUTOR_CONFIGURATIONS} in one sweep$"):
        sweep({"nChannels": "1:4000", "growthRate": "1:4000"}, executor=Recording(2))


class Failing(concurrent.futures.Executor):
    _max_workers = 1

    def submit(self, fn, /, *args, **kwargs):
        future = concurrent.futures.Future()
        future.set_exception(ModuleNotFoundError("No module named 'msdprof'"))
        return future


def test_a_chunk_the_executor_fails_is_a_worker_error_naming_its_configurations():
    with pytest.raises(WorkerError, match=r"^counting configurations #1..#12 failed: "
                                          r"ModuleNotFoundError: No module named 'msdprof'$"):
        sweep(GRID, BASE, input_size=SIZE, executor=Failing())  # 96 // 8 = 12 a chunk


# --- msdprof sweep --dask -----------------------------------------------------------------------


def test_cli_dask_writes_the_json_of_jobs_1(capsys, cluster):
    local = run(capsys, *ARGS, "--jobs", "1")
    assert run(capsys, *ARGS, "--dask", cluster[0].scheduler_address) == local  # and the summary
    assert local[0] == 0 and json.loads(local[1])["summary"]["skipped"] == 24


def test_cli_dask_with_nothing_listening_is_a_one_line_error_within_seconds(capsys):
    address = f"tcp://127.0.0.1:{free_port()}"
    start = time.monotonic()
    code, out, err = run(capsys, *ARGS, "--dask", address)
    assert time.monotonic() - start < cli_sweep.DASK_TIMEOUT_S + 5
    assert (code, out) == (2, "")
    assert err == (f"msdprof: error: --dask {address}: no Dask scheduler answered within "
                   f"{cli_sweep.DASK_TIMEOUT_S} s (start one with: dask scheduler)\n")


@pytest.mark.parametrize("address, why", [
    ("foo://host:8786", "unknown address scheme 'foo'"),
    ("tcp://host:port", "invalid literal for int()"),
    ("host", "missing port number"),
])
def test_cli_dask_an_address_dask_cannot_read_is_a_one_line_error_at_once(capsys, address, why):
    start = time.monotonic()
    code, out, err = run(capsys, *ARGS, "--dask", address)
    assert time.monotonic() - start < 2
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert err.startswith(f"msdprof: error: --dask {address}: not a Dask scheduler address (")
    assert why in err


def test_cli_dask_a_bad_grid_is_said_before_connecting(capsys):
    start = time.monotonic()
    code, out, err = run(capsys, "--nBlocks", "3:x", "--dask", f"tcp://127.0.0.1:{free_port()}")
    assert time.monotonic() - start < 2
    assert (code, out) == (2, "")
    assert err == "msdprof: error: --nBlocks 3:x: a range is a:b or a:b:step with whole numbers, e.g. 3:10\n"


def test_cli_dask_a_scheduler_without_workers_is_a_one_line_error(capsys, monkeypatch):
    monkeypatch.setattr(cli_sweep, "DASK_TIMEOUT_S", 1)
    with LocalCluster(n_workers=0, processes=False, protocol="tcp://", dashboard_address=":0") as empty:
        code, out, err = run(capsys, *ARGS, "--dask", empty.scheduler_address)
    assert (code, out) == (2, "")
    assert err == (f"msdprof: error: --dask {empty.scheduler_address}: the scheduler has no worker "
                   f"(none joined within 1 s; start some with: dask worker {empty.scheduler_address})\n")


def test_cli_dask_without_dask_installed_names_the_extra_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed: ImportError
    code, out, err = run(capsys, *ARGS, "--dask", "tcp://127.0.0.1:8786")
    assert (code, out) == (2, "")
    assert err == ("msdprof: error: --dask tcp://127.0.0.1:8786: needs Dask's distributed package, "
                   "not installed here: pip install 'msdprof[cluster]'\n")


def test_cli_dask_with_jobs_is_a_one_line_error(capsys):
    code, out, err = run(capsys, *ARGS, "--jobs", "2", "--dask", "tcp://127.0.0.1:8786")
    assert (code, out) == (2, "")
    assert err == ("msdprof: error: --jobs 2: the Dask cluster's workers count the configurations: "
                   "give --jobs or --dask, not both\n")


def test_cli_dask_a_failing_worker_is_a_one_line_error_exit_1(capsys, cluster, monkeypatch):
    def missing(task, combos):
        raise ModuleNotFoundError("No module named 'msdprof'")

    monkeypatch.setattr(sweep_module, "_count_packed", missing)  # the workers are threads here
    code, out, err = run(capsys, *ARGS, "--dask", cluster[0].scheduler_address)
    assert (code, out) == (1, "")
    assert err == (f"msdprof: error: --dask {cluster[0].scheduler_address}: counting configurations "
                   "#1..#6 failed: ModuleNotFoundError: No module named 'msdprof'\n")  # 96 // (2 * 8)
