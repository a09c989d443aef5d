"""`msdprof sweep` and `msdprof.analysis.sweep.sweep`: the grid syntax, rows equal to `exit_costs`, skipped
configurations with their reasons, the filters and the Pareto front, and the command line.

The networks are tiny (2 scales, 4 stem channels, 16-pixel images) so that the whole file runs in
seconds; the expected values come from `exit_costs` on each configuration and from brute force."""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
from types import SimpleNamespace

import pytest

from msdnet import Options, OptionError, resolve
from msdprof import exit_costs
from msdprof.cli import main
from msdprof.render import sweep_view
from msdprof.render.formatting import to_text
from msdprof.core.plan_costs import plan_costs
from msdprof.analysis.sweep import VerificationError, check_grid, pareto_front, parse_values, sweep

BASE = Options(nChannels=4, growthRate=2, grFactor=(1, 2), bnFactor=(1, 2), base=1)
SIZE = 16  # pixels: the sides 9..24 suit two scales and the CIFAR heads
GRID = {"nBlocks": "1:3", "stepmode": "even,lin_grow", "step": "1,2"}
GRID_VALUES = [(1, 2, 3), ("even", "lin_grow"), (1, 2)]
BASE_ARGS = ["--nChannels", "4", "--growthRate", "2", "--grFactor", "1-2", "--bnFactor", "1-2",
             "--base", "1", "--input-size", "16"]


@pytest.fixture(scope="module")
def small():
    return sweep(GRID, BASE, input_size=SIZE)


def costs_of(values):
    return exit_costs(resolve(BASE, **dict(values)), input_size=SIZE)


def run(capsys, *argv):
    code = main(["sweep", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- the grid syntax ----------------------------------------------------------------------------


def test_a_range_is_inclusive():
    assert parse_values("nBlocks", "3:6") == (3, 4, 5, 6)


def test_a_range_may_take_a_step():
    assert parse_values("growthRate", "2:10:4") == (2, 6, 10)


def test_commas_join_values_and_ranges_in_the_order_given():
    assert parse_values("base", "8,1:3") == (8, 1, 2, 3)


def test_values_are_normalised_as_options_normalises_them():
    assert parse_values("stepmode", "EVEN,lin_grow") == ("even", "lin_grow")
    assert parse_values("grFactor", "1-2-4,1-2") == ((1, 2, 4), (1, 2))
    assert parse_values("bottleneck", "true,no") == (True, False)
    assert parse_values("reduction", "0.25,1") == (0.25, 1.0)


@pytest.mark.parametrize("option, text", [
    ("nBlocks", "x"), ("nBlocks", "3:x"), ("nBlocks", "5:3"), ("nBlocks", "1:5:0"),
    ("nBlocks", "0:2"), ("nBlocks", ",3"), ("reduction", "0.1:0.5"), ("stepmode", "evne"),
    ("grFactor", "1-a"),
])
def test_a_value_no_configuration_could_take_is_an_option_error_naming_the_option(option, text):
    with pytest.raises(OptionError) as error:
        parse_values(option, text)
    assert error.value.option == option


def test_an_unknown_grid_option_is_an_option_error():
    with pytest.raises(OptionError, match="not an MSDNet option"):
        check_grid({"blocks": "3"})


def test_a_grid_over_the_size_limit_is_refused_before_counting():
    with pytest.raises(OptionError, match="160000 configurations"):
        check_grid({"nChannels": "1:400", "growthRate": "1:400"})


def test_the_api_takes_lists_and_single_numbers_as_well_as_strings():
    assert check_grid({"nBlocks": [3, "4"], "step": 2, "grFactor": ["1-2", (1, 2, 4)]}) == (
        ("nBlocks", (3, 4)), ("step", (2,)), ("grFactor", ((1, 2), (1, 2, 4))))


# --- rows, skipped configurations ---------------------------------------------------------------


def test_rows_come_in_grid_order_with_the_first_option_varying_slowest(small):
    expected = list(itertools.product(*GRID_VALUES))
    assert [tuple(v for _, v in row.values) for row in small.rows] == expected
    assert [row.index for row in small.rows] == list(range(1, len(expected) + 1))


def test_each_row_holds_exactly_what_exit_costs_returns_for_its_configuration(small):
    for row in small.rows:
        assert row.costs == costs_of(row.values)


def test_skipped_configurations_carry_the_reason_the_options_or_the_counter_give():
    grid = {"grFactor": "1-2,1-2-4", "bnFactor": "1-2,1-2-4"}
    result = sweep(grid, BASE, input_size=SIZE)
    assert [row.index for row in result.rows] == [1]
    assert [s.index for s in result.skipped] == [2, 3, 4]
    for s in result.skipped[:2]:  # lengths differ: the options themselves refuse them
        with pytest.raises(OptionError) as error:
            resolve(BASE, **dict(s.values))
        assert str(s) == str(error.value)
    with pytest.raises(OptionError) as error:  # three scales: a 16-pixel image is too small
        costs_of(result.skipped[2].values)
    assert str(result.skipped[2]) == str(error.value)
    assert (result.size, result.counted) == (4, 1)


def test_a_configuration_given_twice_gives_two_equal_rows():
    result = sweep({"nBlocks": "2,2"}, BASE, input_size=SIZE)
    assert [row.index for row in result.rows] == [1, 2]
    assert result.rows[0].costs == result.rows[1].costs


def test_two_processes_give_the_same_result_as_one(small):
    assert sweep(GRID, BASE, input_size=SIZE, jobs=2) == small


def test_progress_is_told_of_every_configuration():
    calls = []
    sweep(GRID, BASE, input_size=SIZE, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (12, 12)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


# --- filters and the Pareto front -----------------------------------------------------------------


def test_max_macs_keeps_the_configurations_whose_last_exit_costs_at_most_it(small):
    limit = sorted(row.total_macs for row in small.rows)[6]
    result = sweep(GRID, BASE, input_size=SIZE, max_macs=limit)
    expected = [row.index for row in small.rows if costs_of(row.values)[-1].macs <= limit]
    assert [row.index for row in result.rows] == expected
    assert result.filtered == len(small.rows) - len(expected)


def test_exit_budget_keeps_the_configurations_whose_exit_1_fits_and_counts_the_exits_that_fit(small):
    budget = sorted(row.first_macs for row in small.rows)[5]
    result = sweep(GRID, BASE, input_size=SIZE, exit_budget=budget)
    expected = {}
    for row in small.rows:
        costs = costs_of(row.values)
        if costs[0].macs <= budget:
            expected[row.index] = len([e for e in costs if e.macs <= budget])
    assert {row.index: row.budget_exits for row in result.rows} == expected


def test_pareto_keeps_exactly_the_configurations_no_other_beats_in_cost_and_parameters(small):
    result = sweep(GRID, BASE, input_size=SIZE, pareto=True)
    points = {row.index: (row.costs[-1].macs, row.costs[-1].params) for row in small.rows}

    def dominated(i):
        m, p = points[i]
        return any(m2 <= m and p2 <= p and (m2, p2) != (m, p) for m2, p2 in points.values())

    assert [row.index for row in result.rows] == [i for i in points if not dominated(i)]
    assert result.dominated == sum(dominated(i) for i in points)


def test_the_pareto_front_keeps_equal_points_and_trade_offs_and_drops_the_dominated():
    rows = [SimpleNamespace(total_macs=m, total_params=p) for m, p in
            [(2, 2), (1, 3), (3, 1), (1, 3), (2, 3), (3, 3)]]
    assert pareto_front(rows) == (rows[0], rows[1], rows[2], rows[3])


def test_budgets_take_counts_with_unit_prefixes(small):
    result = sweep(GRID, BASE, input_size=SIZE, max_macs="1K")
    assert result.rows == () and result.filtered == len(small.rows)


# --- the command line ---------------------------------------------------------------------------


def test_cli_json_is_the_api_result(capsys):
    code, out, err = run(capsys, *BASE_ARGS, "--nBlocks", "1:3", "--stepmode", "even,lin_grow",
                         "--step", "1,2", "--format", "json", "--quiet")
    assert (code, err) == (0, "")
    # The command line's grid: every option it names, in the authors' order, over their defaults.
    api = sweep({"nBlocks": "1:3", "stepmode": "even,lin_grow", "step": "1,2", "base": "1",
                 "nChannels": "4", "growthRate": "2", "grFactor": "1-2", "bnFactor": "1-2"},
                input_size="16")
    assert json.loads(out) == json.loads(json.dumps(api.as_dict()))
    assert json.loads(out)["summary"] == {"configurations": 12, "counted": 12, "skipped": 0,
                                          "filtered": 0, "dominated": 0, "kept": 12,
                                          "shown": 12}


def test_cli_csv_has_one_line_per_configuration_with_exact_integers(capsys, small):
    code, out, _ = run(capsys, *BASE_ARGS, "--nBlocks", "1:3", "--stepmode", "even,lin_grow",
                       "--step", "1,2", "--format", "csv", "--quiet")
    assert code == 0
    lines = list(csv.DictReader(io.StringIO(out)))
    assert list(lines[0]) == ["index", "nBlocks", "stepmode", "step", "base", "nChannels",
                              "growthRate", "grFactor", "bnFactor", "exits", "layers", "first_macs",
                              "total_macs", "total_params", "exit_macs", "exit_params", "convention"]
    assert len(lines) == 12
    for line, row in zip(lines, small.rows):
        assert int(line["total_macs"]) == row.total_macs
        assert int(line["total_params"]) == row.total_params
        assert line["exit_macs"] == ";".join(str(e.macs) for e in row.costs)


def test_cli_reports_the_skipped_configurations_on_stderr_with_csv(capsys):
    code, _, err = run(capsys, *BASE_ARGS, "--growthRate", "2,3", "--grFactor", "1-3", "--format", "csv")
    assert code == 0
    assert "2 configurations, 1 counted, 1 skipped" in err
    assert "skipped 1: growthRate 3: growthRate*grFactor[1] = 9 is odd" in err


def test_cli_quiet_writes_nothing_on_stderr(capsys):
    code, out, err = run(capsys, *BASE_ARGS, "--growthRate", "2,3", "--grFactor", "1-3", "--format",
                         "csv", "--quiet")
    assert code == 0 and out and err == ""


def test_cli_table_lists_the_skip_reasons_under_the_table(capsys):
    code, out, err = run(capsys, *BASE_ARGS, "--growthRate", "2,3", "--grFactor", "1-3")
    assert (code, err) == (0, "")
    assert "2 configurations, 1 counted, 1 skipped" in out and "skipped 1: growthRate 3:" in out


@pytest.mark.parametrize("argv, start", [
    (["--nBlocks", "3:x"], "msdprof: error: --nBlocks 3:x: a range is a:b"),
    (["--reduction", "0.1:0.5"], "msdprof: error: --reduction 0.1:0.5: ranges a:b are for"),
    (["--stepmode", "evne"], "msdprof: error: --stepmode evne: must be one of even, lin_grow"),
    (["--jobs", "0"], "msdprof: error: --jobs 0: must be a whole number from 1 to 64"),
    (["--max-macs", "lots"], "msdprof: error: --max-macs lots: must be a count"),
    (["--format", "xml"], "msdprof: error: --format xml: must be one of"),
    (["--preset", "nope"], "msdprof: error: --preset nope: must be one of"),
    (["--growthRate", "3", "--grFactor", "1-3"],  # the grid's one configuration is skipped
     "msdprof: error: --growthRate 3: growthRate*grFactor[1] = 9 is odd"),
])
def test_cli_bad_input_is_one_line_and_exit_code_2(capsys, argv, start):
    code, out, err = run(capsys, *BASE_ARGS, *argv, "--quiet")
    assert (code, out) == (2, "")
    assert err.startswith(start) and err.count("\n") == 1


def test_cli_does_not_replace_a_file_without_force(capsys, tmp_path):
    target = tmp_path / "sweep.csv"
    target.write_text("keep me")
    code, _, err = run(capsys, *BASE_ARGS, "--format", "csv", "-o", str(target), "--quiet")
    assert code == 2 and "already exists; pass --force" in err
    assert target.read_text() == "keep me"
    code, _, _ = run(capsys, *BASE_ARGS, "--format", "csv", "-o", str(target), "--quiet", "--force")
    assert code == 0 and target.read_text().startswith("index,")


def test_cli_jobs_1_and_2_write_the_same_json(capsys):
    argv = [*BASE_ARGS, "--nBlocks", "1:3", "--stepmode", "even,lin_grow", "--format", "json", "--quiet"]
    outputs = [run(capsys, *argv, "--jobs", jobs)[1] for jobs in ("1", "2")]
    assert outputs[0] == outputs[1]


# --- counting from the plan, --verify -------------------------------------------------------------

BIG_GRID = {"nBlocks": "1:5", "step": "1:4", "base": "1:2", "stepmode": "even,lin_grow"}  # 80


def test_two_processes_count_plans_as_one_does_past_the_in_process_limit():
    assert sweep(BIG_GRID, BASE, input_size=SIZE, jobs=2) == sweep(BIG_GRID, BASE, input_size=SIZE)


def test_verify_counts_by_the_hooks_too_and_gives_the_same_rows(small):
    verified = sweep(GRID, BASE, input_size=SIZE, verify=True, jobs=2)
    assert verified.verified and not small.verified
    assert verified.rows == small.rows and verified.skipped == small.skipped


def test_verify_raises_at_the_first_difference_naming_the_configuration_and_field(monkeypatch, capsys):
    import msdprof.analysis.sweep as module

    def off_by_one(plan, convention):  # a plan count that is wrong for two blocks
        costs = plan_costs(plan, convention)
        if plan.options.nBlocks != 2:
            return costs
        exits = (costs[0], dataclasses.replace(costs[1], lazy_params=costs[1].lazy_params + 1))
        return dataclasses.replace(costs, exits=exits)

    monkeypatch.setattr(module, "plan_costs", off_by_one)
    with pytest.raises(VerificationError) as error:
        sweep({"nBlocks": "1:3"}, BASE, input_size=SIZE, verify=True)
    assert str(error.value).startswith("configuration #2 (nBlocks 2): exit 2 lazy_params: the plan counts ")
    code, out, err = run(capsys, *BASE_ARGS, "--nBlocks", "1:3", "--verify", "--quiet", "--jobs", "1")
    assert (code, out) == (1, "")
    assert err.startswith("msdprof: error: --verify: configuration #2 (nBlocks 2, base 1, nChannels 4, "
                          "growthRate 2, grFactor 1-2, bnFactor 1-2): exit 2 lazy_params: the plan counts ")
    assert err.count("\n") == 1


def test_a_grid_value_past_the_limits_is_refused_before_anything_is_counted():
    with pytest.raises(OptionError, match=r"^nChannels 1000000000: must be at most 100,000"):
        sweep({"nChannels": "4,1000000000"}, BASE, input_size=SIZE, verify=True)


# --- grid sizes -----------------------------------------------------------------------------------


def test_a_huge_range_is_refused_by_its_size_before_any_list_is_made():
    with pytest.raises(OptionError, match="the grid would have 999999999999999999999 configurations"):
        sweep({"nBlocks": range(1, 10**21)})


def test_a_huge_iterable_is_read_only_up_to_the_limit():
    with pytest.raises(OptionError, match="more than 100000 values"):
        sweep({"nBlocks": itertools.count(1)})


def test_cli_a_huge_range_is_a_one_line_error(capsys):
    code, out, err = run(capsys, "--nBlocks", "1:1000000000000000000000")
    assert (code, out) == (2, "")
    assert err == "msdprof: error: --nBlocks 1:1000000000000000000000: more than 100000 values\n"


# --- sort and top ---------------------------------------------------------------------------------


def test_sort_orders_the_rows_by_a_column_with_ties_in_grid_order(small):
    result = sweep(GRID, BASE, input_size=SIZE, sort="total_macs")
    assert result.rows == tuple(sorted(small.rows, key=lambda row: row.total_macs))
    result = sweep(GRID, BASE, input_size=SIZE, sort="-total_params")
    assert result.rows == tuple(sorted(small.rows, key=lambda row: -row.total_params))


def test_sort_takes_an_option_name(small):
    result = sweep(GRID, BASE, input_size=SIZE, sort="-stepmode")
    assert [row.index for row in result.rows] == [r.index for r in small.rows if r.options.stepmode == "lin_grow"] + [
        r.index for r in small.rows if r.options.stepmode == "even"]


def test_top_keeps_the_first_rows_of_the_sort_order_and_counts_the_rest(small):
    result = sweep(GRID, BASE, input_size=SIZE, sort="first_macs", top=3)
    assert result.rows == tuple(sorted(small.rows, key=lambda row: row.first_macs)[:3])
    assert (result.kept, result.beyond_top) == (12, 9)
    assert "the first 3 of 12 by first_macs shown" in sweep_view.summary(result)


def test_top_without_sort_keeps_the_first_rows_in_grid_order(small):
    assert sweep(GRID, BASE, input_size=SIZE, top="4").rows == small.rows[:4]


@pytest.mark.parametrize("kwargs, match", [
    ({"sort": "cost"}, "sort cost: must be a column: index, exits"),
    ({"sort": "budget_exits"}, "sort budget_exits: must be a column"),
    ({"top": 0}, "top 0: must be a whole number >= 1"),
    ({"top": "x"}, "top x: must be a whole number >= 1"),
])
def test_a_bad_sort_or_top_is_an_option_error(kwargs, match):
    with pytest.raises(OptionError, match=match):
        sweep(GRID, BASE, input_size=SIZE, **kwargs)


def test_budget_exits_sorts_with_an_exit_budget(small):
    budget = sorted(row.first_macs for row in small.rows)[5]
    result = sweep(GRID, BASE, input_size=SIZE, exit_budget=budget, sort="-budget_exits")
    assert [row.budget_exits for row in result.rows] == sorted((r.budget_exits for r in result.rows), reverse=True)


# --- the plain table's fast layout, the plot ------------------------------------------------------


@pytest.mark.parametrize("width", [120, 80, 40])
def test_the_plain_table_is_what_rich_lays_out_for_every_row(width):
    grid = {**BIG_GRID, "growthRate": "2,3", "grFactor": "1-3", "bnFactor": "1-3"}  # 3: skipped
    result = sweep(grid, BASE, input_size=SIZE, exit_budget="10G")  # adds a column
    assert len(result.rows) == 80 and result.skipped
    assert sweep_view.render_table(result, width) == to_text(sweep_view.renderable(result, plain=True), width)


def test_points_hold_every_counted_configuration_and_the_front_is_what_pareto_keeps(small):
    from msdprof.render.sweep_plot import front

    limit = sorted(row.total_macs for row in small.rows)[8]
    result = sweep(GRID, BASE, input_size=SIZE, points=True, max_macs=limit)
    assert [(p.index, p.first_macs, p.total_macs, p.total_params) for p in result.points] == [
        (row.index, row.first_macs, row.total_macs, row.total_params) for row in small.rows]
    assert [p.within for p in result.points] == [row.total_macs <= limit for row in small.rows]
    pareto = sweep(GRID, BASE, input_size=SIZE, pareto=True, max_macs=limit)
    assert [p.index for p in front(result.points)] == [row.index for row in pareto.rows]


def test_cli_plot_writes_the_same_svg_every_time(capsys, tmp_path):
    argv = [*BASE_ARGS, "--nBlocks", "1:3", "--stepmode", "even,lin_grow", "--quiet", "--format", "csv"]
    first, second = tmp_path / "a.svg", tmp_path / "b.svg"
    assert run(capsys, *argv, "--plot", str(first))[0] == 0
    assert run(capsys, *argv, "--plot", str(second))[0] == 0
    svg = first.read_bytes()
    assert svg.startswith(b"<?xml") and b"</svg>" in svg and svg == second.read_bytes()


@pytest.mark.parametrize("plot, output, message", [
    ("sweep.png", "sweep.csv", "--plot {}: must be an .svg file"),
    ("sweep.svg", "sweep.svg", "--plot {}: is also the -o file; give two names"),
])
def test_cli_a_bad_plot_path_is_refused_before_any_work(capsys, tmp_path, plot, output, message):
    path = str(tmp_path / plot)
    code, out, err = run(capsys, *BASE_ARGS, "--plot", path, "-o", str(tmp_path / output), "--quiet")
    assert (code, out, err) == (2, "", f"msdprof: error: {message.format(path)}\n")
    assert list(tmp_path.iterdir()) == []
