"""Signatures: every option is a keyword with its default, for the classes and the functional forms.

The options shared by several optimizers are declared once (``anisoada.optim._common``) and
reach each constructor and functional form as a typed ``**options``; ``inspect.signature`` must
still list each of them (``anisoada.experiments`` checks option names against it).
"""

from __future__ import annotations

import inspect

import pytest
import torch

from anisoada.optim import OPTIMIZERS, adagrad, adagrad_norm, sgd

OWN_OPTIONS = {
    "adagrad": {"eps": 1e-10, "eps_placement": "outside", "initial_accumulator_value": 0.0,
                "delayed": False},
    "adagrad_norm": {"eps": 1e-10, "eps_placement": "outside", "initial_accumulator_value": 0.0,
                     "delayed": False, "per_column": False},
    "sgd": {"momentum": 0.0, "dampening": 0.0, "nesterov": False},
}  # fmt: skip
SHARED_OPTIONS = {"box": None, "box_radius": None, "weight_decay": 0.0, "maximize": False,
                  "kernel": "fast"}  # fmt: skip


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_class_signature_lists_every_option_with_the_default_a_group_gets(name) -> None:
    parameters = inspect.signature(OPTIMIZERS[name]).parameters
    assert list(parameters)[:2] == ["params", "lr"] and parameters["lr"].default == 1e-2
    options = {n: p.default for n, p in parameters.items() if n not in ("params", "lr")}
    assert options == {**OWN_OPTIONS[name], **SHARED_OPTIONS}
    assert all(parameters[n].kind is inspect.Parameter.KEYWORD_ONLY for n in options)
    group = OPTIMIZERS[name]([torch.zeros(2, requires_grad=True)]).param_groups[0]
    assert {n: group[n] for n in options} == options


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_an_unknown_keyword_is_a_type_error_naming_it(name) -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'betas'"):
        OPTIMIZERS[name]([torch.zeros(2, requires_grad=True)], betas=(0.9, 0.99))


@pytest.mark.parametrize(
    ("function", "own"),
    [
        (adagrad, {"eps": 1e-10, "eps_placement": "outside", "delayed": False}),
        (adagrad_norm, {"per_column": False, "squared_norm": None, "eps": 1e-10,
                        "eps_placement": "outside", "delayed": False}),
        (sgd, {"momentum": 0.0, "dampening": 0.0, "nesterov": False}),
    ],
    ids=["adagrad", "adagrad_norm", "sgd"],
)  # fmt: skip
def test_functional_signature_lists_every_keyword_with_its_default(function, own) -> None:
    parameters = inspect.signature(function).parameters
    keywords = {
        n: p.default for n, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    plumbing = {"weight_decay": 0.0, "maximize": False, "boxes": None, "state_steps": None,
                "workspaces": None, "kernel": "fast"}  # fmt: skip
    assert keywords == {"lr": inspect.Parameter.empty, **own, **plumbing}
    w = torch.zeros(2)
    state = [torch.zeros(2)] if function is adagrad else torch.zeros(())
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'foreach'"):
        function([w], [torch.ones(2)], state, lr=0.1, foreach=True)
