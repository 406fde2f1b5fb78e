"""Shared command-line options: the torch-free choice lists agree with the libraries', and the
rasterizer's old `--backend` spelling still works, with a note."""
from __future__ import annotations

import argparse
import logging

import pytest

from runtime import options


def test_choices_are_the_libraries():
    from avatar.raster import BACKENDS as RASTERS
    from runtime.inference import AUTO, BACKENDS

    assert options.RASTERS == RASTERS
    assert options.INFERENCE_BACKENDS == (AUTO, *BACKENDS)


def parse(*argv):
    p = argparse.ArgumentParser()
    options.add_raster_argument(p)
    return p.parse_args(argv)


def test_raster_option_and_its_old_spelling(caplog):
    assert options.raster_choice(parse()) == "cpu"
    assert options.raster_choice(parse("--raster", "gsplat")) == "gsplat"
    with caplog.at_level(logging.WARNING):
        assert options.raster_choice(parse("--backend", "gsplat")) == "gsplat"
    assert "deprecated: use --raster gsplat" in caplog.text
    with pytest.raises(ValueError, match="disagree"):
        options.raster_choice(parse("--raster", "cpu", "--backend", "gsplat"))
