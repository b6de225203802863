"""A GAN's generator must make what its discriminator reads: `nnspec check` says so (E509)."""

from __future__ import annotations

import pytest
from conftest import ROOT, SPECS

import nnspec

MISFIT = ROOT / "tests" / "specs" / "errors" / "E509_gan_generator_does_not_fit.nn"


def test_every_network_of_the_file_checked_together_reports_the_misfit_once():
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.load_all(MISFIT)
    found = [e for e in caught.value.errors if e.code == "E509"]
    assert len(found) == 1, "a GAN's section is kept under both names; it is checked once"
    assert (found[0].span.line, found[0].span.column) == (19, 21)


@pytest.mark.parametrize("network", ["g", "d"])
def test_loading_either_network_of_the_pair_reports_it(network):
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.load(MISFIT, network=network)
    assert caught.value.code == "E509"


def test_a_pair_that_fits_checks_clean():
    assert [m.name for m in nnspec.load_all(SPECS / "gan.nn")] == ["generator", "discriminator"]
