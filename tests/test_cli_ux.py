"""What a new user meets at the command line (issue 14): hints for mistyped options, what
ImageNet needs, one stderr line per file written (``--quiet`` silences it), what sweep needs, and
the base a count table's options were laid over."""

from __future__ import annotations

import pytest

from msdprof import exit_costs
from msdprof.render.formatting import network_name, title
from msdnet import Options
from cli_run import picture, run


# --- did you mean ---------------------------------------------------------------------------


@pytest.mark.parametrize("argv, hint", [
    (["count", "--nblocks", "7"], "unrecognized arguments: --nblocks 7; did you mean --nBlocks?"),
    (["count", "--growthrate=8"], "unrecognized arguments: --growthrate=8; did you mean --growthRate?"),
    (["count", "--input_size", "64"], "did you mean --input-size?"),
    (["sweep", "--nblock", "3:5"], "unrecognized arguments: --nblock 3:5; did you mean --nBlocks?"),
    (["graph", "-o", "g.svg", "--Dense"], "did you mean --dense?"),
    (["budget", "--anytme", "3M"], "did you mean --anytime?"),
    (["report", "-o", "r.md", "--HTML"], "did you mean --html?"),
])
def test_an_unknown_option_gets_the_nearest_option_of_its_command(capsys, tmp_path, monkeypatch, argv, hint):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and list(tmp_path.iterdir()) == []
    assert err.startswith("msdprof: error: ") and hint in err and err.count("\n") == 1


def test_an_option_like_none_gets_no_hint(capsys):
    code, _, err = run(capsys, "count", "--frobnicate")
    assert code == 2
    assert err == "msdprof: error: unrecognized arguments: --frobnicate (see 'msdprof count --help')\n"


# --- ImageNet needs four scales ----------------------------------------------------------------


def test_data_imagenet_alone_says_what_imagenet_needs(capsys):
    code, _, err = run(capsys, "count", "--data", "ImageNet")
    assert code == 2
    # 224 px works with 4 scales only (msdnet.plan.input_size_range); 65..192 with 3
    assert err == ("msdprof: error: --data ImageNet: its default 224x224 input needs 4 scales "
                   "(--grFactor 1-2-4-4 --bnFactor 1-2-4-4, as in --preset imagenet-step4), these "
                   "options have 3 (grFactor 1-2-4); or give --input-size: sides from 65 to 192 "
                   "work with 3 scales\n")


def test_a_typed_input_size_is_still_named_as_typed(capsys):
    code, _, err = run(capsys, "count", "--data", "ImageNet", "--input-size", "224")
    assert code == 2 and err.startswith("msdprof: error: --input-size 224: too large for 3 scales")


def test_imagenet_with_four_scales_counts(capsys):
    code, out, _ = run(capsys, "count", "--data", "ImageNet", "--grFactor", "1-2-4-4",
                       "--bnFactor", "1-2-4-4", "--format", "csv")
    assert code == 0 and out.startswith("exit,layer,")


# --- one line per file written ------------------------------------------------------------------


@pytest.mark.parametrize("argv, line", [
    (["count", "--format", "csv", "-o", "c.csv"], "msdprof count: wrote c.csv\n"),
    (["graph", "-o", "g.json"], "msdprof graph: wrote g.json\n"),
    (["budget", "--anytime", "50M", "-o", "b.txt"], "msdprof budget: wrote b.txt\n"),
    (["sweep", "--nBlocks", "2:3", "--jobs", "1", "-o", "s.csv", "--format", "csv"],
     "msdprof sweep: wrote s.csv\nmsdprof sweep: 2 configurations, 2 counted, 2 shown\n"),
])
def test_writing_a_file_says_so_on_stderr_and_quiet_silences_it(capsys, tmp_path, monkeypatch, argv, line):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert (code, out, err) == (0, "", line)
    code, out, err = run(capsys, *argv, "--force", "--quiet")
    assert (code, out, err) == (0, "", "")


def test_a_report_lists_its_files_in_their_directory(capsys, tmp_path):
    code, _, err = run(capsys, "report", "--preset", "cifar10-batch", "-o", str(tmp_path / "r.md"))
    assert code == 0
    cost, layout = picture(tmp_path, "r-cost.svg").name, picture(tmp_path, "r-layout.svg").name
    assert err == f"msdprof report: wrote r.md, {cost}, {layout} in {tmp_path}\n"


def test_a_report_without_graphviz_says_what_it_left_out(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no `neato` to be found
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "report", "--preset", "cifar10-batch", "-o", "r.md")
    assert code == 0
    assert err == (f"msdprof report: wrote r.md, {picture(tmp_path, 'r-cost.svg').name}; left out the layout pictures: "
                   "Graphviz's `neato` program was not found (apt-get install graphviz), the "
                   "report says so in their place\n")


def test_printing_to_standard_output_says_nothing_on_stderr(capsys):
    code, out, err = run(capsys, "count", "--format", "csv")
    assert code == 0 and out and err == ""


# --- sweep needs a grid; the count title names its base -------------------------------------------


def test_sweep_without_a_grid_says_what_it_needs(capsys):
    code, out, err = run(capsys, "sweep", "--preset", "cifar10-batch")
    assert code == 2 and out == ""
    assert err == ("msdprof: error: sweep needs a grid: the values of one or more options to "
                   "combine, e.g. --nBlocks 3:10 --stepmode even,lin_grow (one configuration: "
                   "msdprof count)\n")


def test_sweep_of_one_configuration_is_singular():
    from msdprof.render import sweep_view
    from msdprof.analysis.sweep import sweep

    result = sweep({}, "cifar10-batch")
    assert sweep_view.title(result) == "MSDNet sweep: 1 configuration (no option varied): cifar10-batch"
    assert sweep_view.summary(result) == "1 configuration, 1 counted, 1 shown"


@pytest.mark.parametrize("options, name, expected", [
    (Options(nBlocks=10, stepmode="even", step=2, base=4, nChannels=16, growthRate=6),
     "cifar10-anytime", "cifar10-anytime"),
    (Options(nBlocks=5, stepmode="lin_grow", step=1, base=1, nChannels=16), "cifar10-batch",
     "cifar10-batch with nBlocks 5"),
    (Options(bottleneck=True), None, "the authors' defaults"),
    (Options(nBlocks=7, stepmode="lin_grow"), None, "the authors' defaults with nBlocks 7, stepmode lin_grow"),
    (Options(), "my-net", "my-net"),
])
def test_network_name_says_which_base_the_options_were_laid_over(options, name, expected):
    assert network_name(options, name) == expected


def test_count_with_options_only_titles_the_authors_defaults(capsys):
    code, out, _ = run(capsys, "count", "--bottleneck", "true", "--format", "markdown")
    assert code == 0
    assert out.startswith("### MSDNet per-exit cost: the authors' defaults (nBlocks 1, ")
    assert title(exit_costs(bottleneck=True)) in out


# --- a --model network's tables (issue 26 item 13) ------------------------------------------

MODELS = "examples/early_exit_models.py"


def test_each_operation_column_of_a_model_picks_its_own_unit(capsys):
    # SDNResNet's heads cost 8,282, 4,266 and 330 ops (`--format csv`): in M they all read 0.00
    code, out, _ = run(capsys, "count", "--model", f"{MODELS}:SDNResNet", "--input-size", "3x32x32",
                       "--format", "markdown", "--convention", "msdnet")
    header, *rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| ")]
    head = header.index("head K ops")
    assert code == 0 and [row[head] for row in rows] == ["8.28", "4.27", "0.33"]
    assert "cumulative M ops" in header


def test_a_model_csv_names_its_exits_and_has_no_msdnet_layer_column(capsys):
    code, out, _ = run(capsys, "count", "--model", f"{MODELS}:BranchyDict", "--input-size", "3x32x32",
                       "--format", "csv")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("exit,name,macs,params,") and "layer" not in lines[0]
    assert [line.split(",")[:2] for line in lines[1:]] == [["1", "early"], ["2", "final"]]


def test_budget_titles_a_model_by_its_class_then_its_factory_once(capsys):
    code, out, _ = run(capsys, "budget", "--model", f"{MODELS}:BranchyDict", "--input-size", "3x32x32",
                       "--geometric")
    heading = " ".join(" ".join(out.split("+")[0].split()).split())
    assert code == 0
    assert heading == f"BranchyDict budgeted batch, expected cost per image: {MODELS}:BranchyDict"
