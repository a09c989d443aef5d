"""Every user mistake on the command line: exit code 2, one line on stderr naming the bad value,
no traceback, nothing written (issue 7).

The table runs ``msdprof.cli.main`` in-process (an exception escaping it — what would be a traceback
— fails the test) in an empty working directory that must stay empty; a few cases run the real
console entry point as a subprocess.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from msdnet.options import OptionError
from msdprof.cli import main
from msdprof.files.saved_outputs import load_outputs

BAD_INPUTS = [
    # (arguments, text the one line must contain)
    (["count", "--nBlocks", "0"], "--nBlocks 0: must be a whole number >= 1"),
    (["count", "--nBlocks", "-2"], "--nBlocks -2: must be a whole number >= 1"),
    (["count", "--nBlocks", "2.5"], "--nBlocks 2.5: must be a whole number >= 1"),
    (["count", "--stepmode", "evn"], "--stepmode evn: must be one of even, lin_grow (did you mean 'even'?)"),
    (["count", "--prune", "maxx"], "--prune maxx: must be one of max, min (did you mean 'max'?)"),
    (["count", "--data", "cifar"], "--data cifar: must be one of cifar10, cifar100, ImageNet (did you mean"),
    (["count", "--format", "jsn"], "--format jsn: must be one of table, json, csv, markdown (did you mean 'json'?)"),
    (["count", "--convention", "flop"], "--convention flop: must be one of msdnet, macs, flops (did you mean"),
    (["count", "--preset", "imagenet-step5"], "--preset imagenet-step5: must be one of"),
    (["count", "--base", "0"], "--base 0: must be a whole number >= 1"),
    (["count", "--nBlocks", "3", "--step", "0"], "--step 0: must be a whole number >= 1"),
    (["count", "--grFactor", "1-x-4"], "--grFactor 1-x-4: must be positive whole numbers joined by '-'"),
    (["count", "--grFactor", ""], "--grFactor '': must be positive whole numbers"),
    (["count", "--bnFactor", "1-0-4"], "--bnFactor 1-0-4: must be positive whole numbers"),
    (["count", "--grFactor", "1-2"], "--grFactor 1-2: must have the same length as bnFactor 1-2-4 (3)"),
    (["count", "--growthRate", "5", "--grFactor", "1-1-1", "--bnFactor", "1-1-1"], "--growthRate 5: growthRate*grFactor[1] = 5 is odd"),
    (["count", "--reduction", "1.5"], "--reduction 1.5: must be a number from 0 to 1"),
    (["count", "--bottleneck", "yes please"], "--bottleneck yes please: must be true or false"),
    (["count", "--input-size", "16"], "--input-size 16: too small for 3 scales and the cifar10 heads"),
    (["count", "--input-size", "16"], "sides from 17 to 48 work"),
    (["count", "--device", "cuda"], "--device cuda: must be meta or cpu"),
    (["count", "-o", "/nonexistent/x.csv"], "directory /nonexistent does not exist"),
    (["count", "--nBlocks"], "argument --nBlocks: expected one argument"),
    (["count", "--nBlocks", "1", "--base", "1", "--prune", "min"], "--prune min: needs at least nScales - 1 = 2 layers"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    # graph
    (["graph"], "the following arguments are required: -o/--output"),
    (["graph", "-o", "layout.bmp"], "--output layout.bmp: unknown suffix '.bmp'; the file name must end in one of .svg"),
    (["graph", "-o", "/nonexistent/layout.svg"], "--output /nonexistent/layout.svg: directory /nonexistent does not exist"),
    (["graph", "--convention", "flop", "-o", "layout.dot"], "--convention flop: must be one of msdnet, macs, flops"),
    (["graph", "--input-size", "100", "-o", "layout.svg"], "--input-size 100: too large for 3 scales"),
    # report
    (["report", "-o", "report.txt"], "--output report.txt: must end in .md (Markdown) or .html (HTML)"),
    (["report", "-o", "/nonexistent/report.md"], "--output /nonexistent/report.md: directory /nonexistent does not exist"),
    (["report", "--all", "--preset", "cifar10-batch", "-o", "reports"], "--preset cifar10-batch: cannot be used with --all"),
    (["report", "--compare", "nBlocks=0", "-o", "report.md"], "--compare nBlocks=0: nBlocks 0: must be a whole number >= 1"),
    (["report", "--compare", "foo:step=2", "-o", "report.md"], "--compare foo:step=2: preset foo: must be one of"),
    # budget (bad saved-output files: tests/test_budget.py)
    (["budget"], "give --anytime BUDGET, --memory BYTES, or --fractions F1,F2,..., --exits-from FILE, --geometric or --logits FILE"),
    (["budget", "--anytime", "5X"], "--anytime 5X: must be a count like 300M, 1.5G or 120000"),
    (["budget", "--anytime=-5M"], "--anytime -5M: must be a count like 300M"),
    (["budget", "--fractions", "0.5,0.5"], "--fractions 0.5,0.5: must have 10 entries, one per exit of the network, not 2"),
    (["budget", "--anytime", "50M", "--geometric"], "--anytime (one budget per image) cannot be combined with --geometric"),
    (["budget", "--logits", "/nonexistent/outputs.npz"], "--logits /nonexistent/outputs.npz: does not exist"),
    (["budget", "--geometric", "--plot", "curve.svg"], "--plot curve.svg: needs --logits FILE"),
    (["budget", "--geometric", "--format", "markdown"], "--format markdown: must be one of table, json, csv"),
    # sweep
    (["sweep", "--nBlocks", "3:x"], "--nBlocks 3:x: a range is a:b or a:b:step with whole numbers"),
    (["sweep", "--stepmode", "evne"], "--stepmode evne: must be one of even, lin_grow (did you mean 'even'?)"),
    (["sweep", "--nBlocks", "3:4", "--max-macs", "2Q"], "--max-macs 2Q: must be a count like 300M"),
    (["sweep", "--nBlocks", "3:4", "--jobs", "100000"], "--jobs 100000: must be a whole number from 1 to 64"),
    (["sweep", "--nBlocks", "3:4", "--jobs", "0"], "--jobs 0: must be a whole number from 1 to 64"),
    (["sweep", "--nBlocks", "1:100000000"], "--nBlocks 1:100000000: more than 100000 values"),
    (["sweep", "--growthRate", "7", "--grFactor", "1-1-1,1-3-3", "--bnFactor", "1-1-1"],
     "(the grid's first reason to skip; all 2 configurations skipped)"),
    (["sweep", "--format", "yaml"], "--format yaml: must be one of table, json, csv, markdown"),
    (["sweep", "--nBlocks", "3:4", "-o", "/nonexistent/grid.csv"], "--output /nonexistent/grid.csv: directory /nonexistent does not exist"),
    (["compare", "--nBlocks", "0"], "--nBlocks 0: must be a whole number >= 1"),
    (["compare", "--format", "yaml"], "--format yaml: must be one of table, json, csv, markdown"),
    (["compare", "-o", "/nonexistent/cmp.json"], "--output /nonexistent/cmp.json: directory /nonexistent does not exist"),
    # limits (README "Limits"; issue 17): refused from the options alone, before anything is built
    (["count", "--nBlocks", "100000"], "--nBlocks 100000: must be at most 1,000 (an MSDNet has at most 1,000 layers"),
    (["count", "--base", "100000"], "--base 100000: must be at most 1,000"),
    (["count", "--nBlocks", "2", "--step", "100000000"], "--step 100000000: must be at most 1,000"),
    (["count", "--nBlocks", "999999999999999999999999"], "--nBlocks 999999999999999999999999: must be at most 1,000"),
    (["count", "--nBlocks", "100", "--stepmode", "lin_grow", "--step", "3"],
     "--nBlocks 100: gives 14,953 layers (nBlocks 100, stepmode lin_grow, step 3, base 4); an MSDNet has "
     "at most 1,000"),
    (["count", "--nChannels", "1000000000"], "--nChannels 1000000000: must be at most 100,000 (a feature map has at most 100,000 channels"),
    (["count", "--nChannels", "999999999999999999999999"], "--nChannels 999999999999999999999999: must be at most 100,000"),
    (["count", "--growthRate", "1000000000"], "--growthRate 1000000000: must be at most 100,000"),
    (["count", "--nChannels", "40000"], "--nChannels 40000: makes stem maps of 160,000 channels (times grFactor 4)"),
    (["count", "--nBlocks", "10", "--growthRate", "4000"],
     "--growthRate 4000: makes layer 10 maps of 112,064 channels (28,016 times grFactor 4); a feature map "
     "has at most 100,000"),
    (["count", "--grFactor", "1-2-1000000000000"], "--grFactor 1-2-1000000000000: has an entry above 100,000"),
    (["count", "--grFactor", "1-1-1-1-1-1-1-1-1-1-1", "--bnFactor", "1-1-1-1-1-1-1-1-1-1-1"],
     "--grFactor 1-1-1-1-1-1-1-1-1-1-1: has 11 entries: at most 10 scales"),
    (["count", "--grFactor", "1-2-4-4-4-4-4-4-4", "--bnFactor", "1-2-4-4-4-4-4-4-4", "--data", "ImageNet"],
     "--grFactor 1-2-4-4-4-4-4-4-4: no input size works: with 9 scales no side from 1 to 4096 pixels keeps "
     "every scale's maps and ends each ImageNet head in a 1x1 map; ImageNet (whose stem divides the side by "
     "4) takes at most 8 scales"),
    (["count", "--input-size", "5000"], "--input-size 5000: must be at most 4096 pixels a side"),
    (["count", "--input-size", "0"], "--input-size 0: must be a side in pixels"),
    (["count", "--input-size", "32x32x32"], "--input-size 32x32x32: must be a side in pixels"),
    (["report", "--compare", "nBlocks=100000", "-o", "r.md"], "--compare nBlocks=100000: nBlocks 100000: must be at most 1,000"),
    (["graph", "--nBlocks", "100", "--stepmode", "lin_grow", "--step", "3", "--dense", "-o", "big.png"],
     "--nBlocks 100: gives 14,953 layers"),
    (["budget", "--nBlocks", "999999999999999999999999", "--geometric"], "--nBlocks 999999999999999999999999: must be at most 1,000"),
    (["budget", "--geometric", "--nBlocks", "134"],
     "--nBlocks 134: is too many exits for the authors' geometric family: the sum of q^k with q = 39/20 "
     "overflows float32 (their arithmetic) past 131 exits"),
    (["budget", "--fractions", "1e-99999999999"],
     "--fractions 1e-99999999999: entry 1 (1e-99999999999) is too long or its exponent too large: at most "
     "100 characters and exponents from -999 to 999"),
    (["budget", "--fractions", "1e-9999999"], "entry 1 (1e-9999999) is too long or its exponent too large"),
    (["count", "-o", ""], "argument -o/--output: must name a file, not ''"),
    (["report", "-o", ""], "argument -o/--output: must name a file, not ''"),
    (["budget", "--geometric", "--logits", "x.npz", "--plot", ""], "argument --plot: must name a file, not ''"),
    # issue 26 item 7: values that hung or were tracebacks
    (["latency", "--min-time", "1e308"], "--min-time 1e308: must be a number of seconds > 0 and at most 3,600"),
    (["budget", "--fractions", "1e999,0,0,0,0,0,0,0,0,0"],
     "--fractions 1e999,0,0,0,0,0,0,0,0,0: sum to more than 1e300; they must sum to 1"),
    (["budget", "--fractions", "1e308,1e308,0,0,0,0,0,0,0,0"], "sum to more than 1e300; they must sum to 1"),
    # a value holding a newline or an escape is echoed on one line, escaped
    (["count", "--preset", "a\nb"], "--preset 'a\\nb': must be one of"),
    (["count", "--nBlocks", "3\x1b[31m"], "--nBlocks '3\\x1b[31m': must be a whole number >= 1"),
    (["count", "-o", "x\ny/costs.csv"], "--output 'x\\ny/costs.csv': directory x\\ny does not exist"),
    # issue 26 item 6: memory bounded by bytes, estimated before anything is allocated
    # 65,536 x (3x32x32 float32 = 12,288 bytes + 2 x 1,253,456 bytes, cifar10-anytime's as-written
    # peak in `count --memory`) = 153.8 GiB
    (["latency", "--batch", "65536"], "--batch 65536: MSDNet's forward on 65,536 3x32x32 float32 images would "
                                      "take about 153.8 GiB of memory: at most 4.0 GiB (see the limits in "
                                      "docs/errors.md); give a smaller --batch"),
    # issue 26 item 12: "did you mean" in any letter case, and for commands
    (["count", "--convention", "FLOPs"], "--convention FLOPs: must be one of msdnet, macs, flops (did you mean 'flops'?)"),
    (["cont"], "invalid choice: 'cont' (choose from count, graph, report, budget, sweep, compare, latency, generate); "
               "did you mean count?"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.startswith("msdprof: error: ")
    assert err.count("\n") == 1, err
    assert message in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["count", "--grFactor", "1-x-4"], "--grFactor 1-x-4: must be positive whole numbers joined by '-'"),
    (["graph", "-o", "layout.bmp"], "--output layout.bmp: unknown suffix '.bmp'"),
    (["report", "-o", "report.txt"], "--output report.txt: must end in .md"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    # each of these hung for over a minute or printed C++ stack frames (issue 17); the timeout is
    # generous for a loaded machine: the error comes before any network is built
    (["count", "--nBlocks", "100000"], "--nBlocks 100000: must be at most 1,000"),
    (["count", "--base", "100000"], "--base 100000: must be at most 1,000"),
    (["count", "--nBlocks", "2", "--step", "100000000"], "--step 100000000: must be at most 1,000"),
    (["count", "--nBlocks", "999999999999999999999999"], "--nBlocks 999999999999999999999999: must be at most"),
    (["count", "--nChannels", "999999999999999999999999"], "--nChannels 999999999999999999999999: must be at most"),
    (["report", "--compare", "nBlocks=100000", "-o", "r.md"], "--compare nBlocks=100000: nBlocks 100000: must be at most"),
    (["graph", "--nBlocks", "100", "--stepmode", "lin_grow", "--step", "3", "--dense", "-o", "big.png"],
     "--nBlocks 100: gives 14,953 layers"),
    (["budget", "--nBlocks", "999999999999999999999999", "--geometric"], "--nBlocks 999999999999999999999999: must be at most"),
    (["budget", "--fractions", "1e-99999999999"], "entry 1 (1e-99999999999) is too long or its exponent too large"),
])
def test_console_entry_point_exits_2_with_one_line_and_no_traceback(argv, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "msdprof.cli", *argv], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("msdprof: error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_kept_without_force(tmp_path):
    target = tmp_path / "costs.csv"
    target.write_text("precious")
    result = subprocess.run([sys.executable, "-m", "msdprof.cli", "count", "--format", "csv", "-o", str(target)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "already exists; pass --force" in result.stderr
    assert target.read_text() == "precious"


def test_unwritable_location_is_refused_naming_the_target():
    # /sys is a read-only file system on Linux, even for root
    result = subprocess.run([sys.executable, "-m", "msdprof.cli", "count", "-o", "/sys/costs.txt"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("msdprof: error: --output /sys/costs.txt: ")
    assert result.stderr.count("\n") == 1


def test_a_fifo_given_as_logits_is_refused_without_waiting_on_it(tmp_path):
    os.mkfifo(tmp_path / "fifo.pt")  # no writer: opening it for reading would block forever
    result = subprocess.run([sys.executable, "-m", "msdprof.cli", "budget", "--geometric", "--logits",
                             "fifo.pt"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr == ("msdprof: error: --logits fifo.pt: is a FIFO, not a regular file; give the "
                             "file the outputs were saved to\n")


# --- hostile or odd --logits files (issue 17) -----------------------------------------------------

def _parts(**changes):
    """The four arrays of a small valid file (3 exits, 6 and 7 samples, 4 classes), as numpy."""
    rng = np.random.default_rng(0)
    parts = {"val_pred": np.full((3, 6, 4), 0.25, np.float32), "val_target": np.arange(6) % 4,
             "test_pred": np.full((3, 7, 4), 0.25, np.float32), "test_target": np.arange(7) % 4}
    parts["val_pred"][:, :, 0] += rng.random((3, 6), dtype=np.float32) * 0.1
    parts.update(changes)
    return parts


def _npz_declaring(shapes: dict[str, tuple[int, ...]], path: Path) -> Path:
    """An .npz whose members' .npy headers declare ``shapes`` (float32 predictions, int64 targets)
    but whose data are a few compressed zero bytes: what a decompression bomb looks like before
    it is read."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, shape in shapes.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                descr = "<f4" if name.endswith("pred") else "<i8"
                np.lib.format.write_array_header_1_0(member, {"descr": descr, "fortran_order": False,
                                                              "shape": shape})
                member.write(bytes(4096))
    return path


def _save_pt(path: Path, *parts) -> Path:
    torch.save(tuple(parts), path)
    return path


def _torch_parts(**changes):
    parts = {n: torch.from_numpy(np.ascontiguousarray(v)) for n, v in _parts().items()}
    parts.update(changes)
    return tuple(parts.values())


HOSTILE_LOGITS = {
    # name: (make the file in a directory, the message after "logits PATH: ")
    "meta tensor": (lambda d: _save_pt(d / "f.pt", *_torch_parts(val_pred=torch.zeros(3, 6, 4, device="meta"))),
                    "val_pred is a meta tensor: it holds no values"),
    "nested tensor": (lambda d: _save_pt(d / "f.pt", *_torch_parts(
        test_pred=torch.nested.nested_tensor([torch.zeros(7, 4), torch.zeros(6, 4)]))),
                      "test_pred is a nested tensor: must be a dense real tensor"),
    "quantized tensor": (lambda d: _save_pt(d / "f.pt", *_torch_parts(
        val_pred=torch.quantize_per_tensor(torch.zeros(3, 6, 4), 0.1, 0, torch.quint8))),
                         "val_pred must be a dense real tensor, not torch.strided quint8"),
    "uint64 past int64": (lambda d: np.savez(d / "f.npz", **_parts(val_target=np.full(6, 2**64 - 1, np.uint64)))
                          or d / "f.npz", "val_target holds 18446744073709551615: must hold class numbers"),
    "object array": (lambda d: np.savez(d / "f.npz", **_parts(val_target=np.array([None] * 6))) or d / "f.npz",
                     "val_target has dtype object: must hold numbers"),
    "npz bomb": (lambda d: _npz_declaring({"val_pred": (1, 300_000_000, 2), "val_target": (300_000_000,),
                                           "test_pred": (1, 7, 2), "test_target": (7,)}, d / "f.npz"),
                 "val_pred has shape [1, 300000000, 2], 600,000,000 numbers: at most 500,000,000 "
                 "(10 exits x 50,000 images x 1,000 classes)"),
    "npz shapes that disagree": (lambda d: _npz_declaring({"val_pred": (3, 100_000_000, 1),
                                                          "val_target": (5,), "test_pred": (3, 7, 1),
                                                          "test_target": (7,)}, d / "f.npz"),
                                 "val_target has 5 entries but val_pred has 100000000 samples"),
    # issue 26 item 6: 1.7 KB on disk, 3e8 numbers a split once copied: bounded by bytes, not counts
    # (2 splits x 3e8 x (4 bytes read + 4 of the float32 copy) + the targets = 4.47 GiB > 4 GiB)
    "stride-0 .pt": (lambda d: _save_pt(d / "f.pt", *_torch_parts(
        val_pred=torch.full((1,), 0.1).expand(3, 100_000, 1000), val_target=torch.zeros(1, dtype=torch.int64).expand(100_000),
        test_pred=torch.full((1,), 0.1).expand(3, 100_000, 1000), test_target=torch.zeros(1, dtype=torch.int64).expand(100_000))),
                     "would take about 4.5 GiB of memory to read and analyse: at most 4.0 GiB (see the "
                     "limits in docs/errors.md)"),
    "directory": (lambda d: (d / "f.pt").mkdir() or d / "f.pt",
                  "is a directory; give the file the outputs were saved to"),
}


@pytest.mark.parametrize("make, message", HOSTILE_LOGITS.values(), ids=HOSTILE_LOGITS.keys())
def test_a_hostile_logits_file_is_one_line_naming_the_fault(make, message, tmp_path, monkeypatch, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns when some of these are made
        path = make(tmp_path)
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.iterdir())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a reader's warning would be a second line
        code = main(["budget", "--nBlocks", "3", "--geometric", "--logits", str(path)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == f"msdprof: error: --logits {path}: {message}\n"
    assert sorted(tmp_path.iterdir()) == before


def test_a_device_given_as_logits_is_refused():
    with pytest.raises(OptionError, match="^logits /dev/null: is a device, not a regular file"):
        load_outputs("/dev/null")


def test_the_npz_bomb_is_refused_without_inflating_it(tmp_path, monkeypatch):
    path = HOSTILE_LOGITS["npz bomb"][0](tmp_path)
    read = []
    real = zipfile.ZipExtFile.read
    def counting_read(self, n=-1):  # every byte inflated from a member
        data = real(self, n)
        read.append(len(data))
        return data
    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    with pytest.raises(OptionError, match="600,000,000 numbers"):
        load_outputs(path, exits=1)
    assert 0 < sum(read) < 1000  # only the .npy headers were read


def test_an_npz_declaring_more_data_than_it_stores_is_refused_unread(tmp_path):
    path = _npz_declaring({"val_pred": (3, 600, 4), "val_target": (600,), "test_pred": (3, 7, 4),
                           "test_target": (7,)}, tmp_path / "f.npz")  # 28,800 bytes declared, 4,096 stored
    with pytest.raises(OptionError, match=r"cannot be read as .npz: val_pred declares \[3, 600, 4\] float32, "
                                          r"more data than its 4,\d{3} bytes"):
        load_outputs(path, exits=3)


def test_version_prints_the_installed_package_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"msdprof {version('msdprof')}\n"


def test_a_huge_top_shows_every_row_instead_of_failing(capsys):
    code = main(["sweep", "--nBlocks", "3:4", "--jobs", "1", "--top", str(10 ** 30), "--format", "csv",
                 "--quiet"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert len(out.splitlines()) == 1 + 2  # the header and both configurations


def test_a_report_keeps_the_page_name_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--nBlocks", "2", "-o", "r.MD", "--quiet"]) == 0
    assert "r.MD" in os.listdir(tmp_path) and "r.md" not in os.listdir(tmp_path)


# --- memory bounded by bytes (issue 26 item 6) --------------------------------------------------

MODELS = Path(__file__).resolve().parent.parent / "examples" / "early_exit_models.py"


def test_an_input_size_whose_one_image_exceeds_the_memory_limit_is_one_line(capsys):
    code = main(["count", "--model", f"{MODELS}:SDNResNet", "--input-size", "16384x16384x16384"])
    assert code == 2
    assert capsys.readouterr().err == (
        "msdprof: error: --input-size 16384x16384x16384: one 16384x16384x16384 float32 image would take "
        "about 16,384.0 GiB of memory: at most 4.0 GiB (see the limits in docs/errors.md)\n")


def test_latency_inputs_of_stride_0_images_are_bounded_by_the_forward_they_feed(tmp_path, capsys):
    # 65,536 images stored as one number (1.6 KB on disk): their forward is what takes memory
    torch.save(torch.zeros(1).expand(65536, 3, 32, 32), tmp_path / "bomb.pt")
    code = main(["latency", "--inputs", str(tmp_path / "bomb.pt")])
    assert code == 2
    assert capsys.readouterr().err.startswith(
        f"msdprof: error: --inputs {tmp_path / 'bomb.pt'}: MSDNet's forward on 65,536 3x32x32 float32 images "
        "would take about 153.8 GiB of memory")


def test_latency_inputs_npz_declaring_too_many_bytes_is_refused_unread(tmp_path, monkeypatch, capsys):
    # 4 KB stored; declared: 3e9 int64 numbers, 8 bytes each as read + 4 as float32 = 33.5 GiB
    path = _npz_declaring({"x": (100_000, 3, 100, 100)}, tmp_path / "bomb.npz")
    read = []
    real = zipfile.ZipExtFile.read
    def counting_read(self, n=-1):
        data = real(self, n)
        read.append(len(data))
        return data
    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    code = main(["latency", "--inputs", str(path)])
    assert code == 2
    assert capsys.readouterr().err == (
        f"msdprof: error: --inputs {path}: its 100000x3x100x100 array, read and as float32 would take "
        "about 33.5 GiB of memory: at most 4.0 GiB (see the limits in docs/errors.md)\n")
    assert 0 < sum(read) < 1000  # only the .npy header was read


def test_held_peak_is_the_most_activation_bytes_any_operation_left_held():
    from msdprof.core.counting import OpCount
    from msdprof.core.dataflow import Dataflow, Op

    def op(i, held):
        return Op(i, f"op{i}", "function", "f", "", OpCount(0, 0), (), (), (1,), held=held)

    assert Dataflow((op(0, 40), op(1, 120), op(2, 80)), ()).held_peak() == 120
    assert Dataflow((), ()).held_peak() == 0


# --- what torch says while msdprof reads a file (issue 33 item 16) -------------------------------------

TINY = f"{Path(__file__).resolve().parents[1] / 'examples' / 'early_exit_models.py'}:TwoExitTiny"

#: Commands reading a file the user gives with torch.load, and how their one line starts.
READERS = {
    "--checkpoint": (["count", "--model", TINY, "--input-size", "4", "--checkpoint", "{f}"],
                     "--checkpoint {f}: is not a state dict torch.load(weights_only=True) can read: "),
    "--inputs": (["count", "--model", TINY, "--inputs", "{f}"],
                 "--inputs {f}: cannot be read: it holds pickled objects, not only tensors (Unsupported "
                 "operand 149); save the tensors alone: torch.save(inputs, FILE)"),
    "--logits": (["budget", "--nBlocks", "3", "--geometric", "--logits", "{f}"],
                 "--logits {f}: cannot be read by torch.load(weights_only=True)"),
    "--weights": (["latency", "--nBlocks", "2", "--weights", "{f}"],
                  "--weights {f}: cannot be read by torch.load(weights_only=True): "),
}


def _pickle_of_a_dict(directory: Path) -> Path:
    """A plain pickle (protocol 4, not torch.save's 2): torch.load warns about the protocol, then
    its weights_only unpickler refuses it."""
    path = directory / "plain.pkl"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    return path


@pytest.mark.parametrize("argv, message", READERS.values(), ids=READERS.keys())
def test_what_torch_warns_while_a_file_is_read_is_not_shown(argv, message, tmp_path, capsys):
    path = _pickle_of_a_dict(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main([a.format(f=path) for a in argv])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.startswith(f"msdprof: error: {message.format(f=path)}") and err.count("\n") == 1, err
    assert [str(w.message) for w in caught] == []


def test_a_refused_pickle_is_one_line_on_the_console_naming_the_unpicklers_reason(tmp_path):
    path = _pickle_of_a_dict(tmp_path)
    result = subprocess.run([sys.executable, "-m", "msdprof.cli", "count", "--model", TINY, "--input-size", "4",
                             "--checkpoint", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (f"msdprof: error: --checkpoint {path}: is not a state dict "
                             "torch.load(weights_only=True) can read: it holds pickled objects, not only "
                             "tensors (Unsupported operand 149); save the state dict alone: "
                             "torch.save(model.state_dict(), FILE)\n")
