"""Options: the authors' names and defaults, and one error type for every bad value (SPEC §1)."""

from __future__ import annotations

import pytest

from msdnet import OptionError, Options, PRESETS, resolve
from msdnet.plan import parse_input_size


def test_defaults_are_the_authors():
    o = Options()
    assert (o.nBlocks, o.stepmode, o.step, o.base, o.nChannels, o.growthRate) == (1, "even", 1, 4, 32, 6)
    assert (o.grFactor, o.bnFactor, o.prune, o.reduction, o.bottleneck, o.data) == (
        (1, 2, 4), (1, 2, 4), "max", 0.5, True, "cifar10")


def test_strings_are_accepted_as_on_the_command_line():
    o = Options(nBlocks="7", grFactor="1-2-4-4", bnFactor="1-2-4-4", bottleneck="false", reduction="0.25")
    assert (o.nBlocks, o.grFactor, o.bottleneck, o.reduction) == (7, (1, 2, 4, 4), False, 0.25)


def test_data_keeps_the_authors_spelling_whatever_the_case():
    assert Options(data="imagenet", grFactor="1-2-4-4", bnFactor="1-2-4-4").data == "ImageNet"


def test_options_are_frozen():
    with pytest.raises(AttributeError):
        Options().nBlocks = 3  # type: ignore[misc]


@pytest.mark.parametrize("kwargs, option, fragment", [
    (dict(nBlocks=0), "nBlocks", "whole number >= 1"),
    (dict(nBlocks=-3), "nBlocks", "whole number >= 1"),
    (dict(nBlocks=2.5), "nBlocks", "whole number >= 1"),
    (dict(nBlocks="seven"), "nBlocks", "whole number >= 1"),
    (dict(stepmode="odd"), "stepmode", "one of even, lin_grow"),
    (dict(prune="mid"), "prune", "one of max, min"),
    (dict(data="mnist"), "data", "one of cifar10, cifar100, ImageNet"),
    (dict(base=0), "base", "whole number >= 1"),
    (dict(nBlocks=2, step=0), "step", "whole number >= 1"),
    (dict(grFactor="1-2", bnFactor="1-2-4"), "grFactor", "same length as bnFactor 1-2-4 (3)"),
    (dict(grFactor="1-x-4"), "grFactor", "positive whole numbers"),
    (dict(grFactor=""), "grFactor", "positive whole numbers"),
    (dict(grFactor="1-0-4"), "grFactor", "positive whole numbers"),
    (dict(bnFactor="1--4"), "bnFactor", "positive whole numbers"),
    (dict(reduction=1.5), "reduction", "from 0 to 1"),
    (dict(reduction=-0.1), "reduction", "from 0 to 1"),
    (dict(bottleneck="maybe"), "bottleneck", "true or false"),
    (dict(growthRate=3, grFactor="1-1-1", bnFactor="1-1-1"), "growthRate", "is odd"),
    (dict(nBlocks=4, nChannels=1, growthRate=2, grFactor="1-2", bnFactor="1-2", reduction=0.01),
     "reduction", "0 channels"),
    # SPEC §1 prune min: layer 1 reads min(nScales, L + 1) scales; with L = 1 and 3 scales, only 2
    (dict(nBlocks=1, base=1, prune="min"), "prune", "at least nScales - 1 = 2 layers in all"),
])
def test_bad_option_raises_one_error_type_naming_option_and_value(kwargs, option, fragment):
    with pytest.raises(OptionError) as info:
        Options(**kwargs)
    error = info.value
    assert isinstance(error, ValueError)
    assert error.option == option
    assert str(error).startswith(option + " ")
    assert fragment in str(error)


def test_prune_min_is_fine_once_the_network_has_nscales_minus_one_layers():
    assert Options(nBlocks=1, base=2, prune="min").steps == (2,)


def test_step_below_one_is_fine_with_a_single_block():
    assert Options(nBlocks=1, step=0).steps == (4,)


def test_odd_growth_rate_is_fine_where_no_layer_halves_it():
    # one scale: every layer has a single normal unit, nothing is split in half
    assert Options(growthRate=5, grFactor="1", bnFactor="1").growthRate == 5


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(OptionError, match="did you mean 'cifar10-anytime'"):
        resolve("cifar10-anytme")


def test_unknown_keyword_option_is_rejected():
    with pytest.raises(OptionError, match="did you mean 'nBlocks'"):
        resolve(nblocks=3)


def test_resolve_lays_keywords_over_a_preset():
    o = resolve("cifar10-anytime", nBlocks=5)
    assert (o.nBlocks, o.step, o.nChannels) == (5, 2, 16)


def test_resolve_with_nothing_is_the_default_recipe():
    assert resolve() == PRESETS["cifar10-anytime"]


def test_resolve_with_options_only_starts_from_the_authors_defaults():
    assert resolve(nBlocks=7, stepmode="lin_grow") == Options(nBlocks=7, stepmode="lin_grow")


@pytest.mark.parametrize("size, fragment", [
    (8, "too small"), (64, "too large"), ("abc", "side in pixels"), (0, "side in pixels"),
])
def test_bad_input_size_names_the_sizes_that_work(size, fragment):
    # CIFAR, 3 scales: the coarsest side is ceil(H/4); two stride-2 head convs and a 2x2 pool must
    # leave 1x1, so ceil(H/16) is 2 or 3: sides 17..48 work.
    with pytest.raises(OptionError) as info:
        parse_input_size(size, PRESETS["cifar10-anytime"])
    assert fragment in str(info.value)
    if "too" in fragment:
        assert "sides from 17 to 48 work" in str(info.value)


def test_imagenet_input_sizes_that_work():
    # ImageNet, 4 scales: coarsest side ceil(H/32); the heads need ceil(H/128) in {2, 3}: 129..384.
    with pytest.raises(OptionError, match="sides from 129 to 384 work"):
        parse_input_size(128, PRESETS["imagenet-step4"])
    assert parse_input_size(384, PRESETS["imagenet-step4"]) == (384, 384)
