"""The examples in the optimizers' docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch


@pytest.mark.parametrize("module", ["_adagrad", "_adagrad_norm", "_sgd", "_box"])
def test_docstring_examples(module: str) -> None:
    mod = importlib.import_module(f"anisoada.optim.{module}")
    result = doctest.testmod(mod, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    if module != "_box":
        assert result.attempted >= 2
