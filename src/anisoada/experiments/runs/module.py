"""A user-defined PyTorch problem as a run kind of the one sweep: ``--problem module:function``.

``ModuleSpec.create("pkg.mod:function")`` (or ``"path/to/file.py:function"``) names a function
that returns a :class:`~anisoada.experiments.tasks.module.ModuleProblem` — or the tuple
``(model_factory, loss_fn, data)`` — and keyword ``options`` passed to it. Its runs
(:class:`ModuleRun`) train one learning rate each through the one loop
(:class:`~anisoada.experiments.tasks.module.ModuleTask`). Every optimizer at a seed starts from
the same initial weights (torch seeded with :func:`derive_seed` of the problem and the seed
index before the factory is called) and sees the same mini-batches.

A run stores its final and initial parameters (flattened) as ``vectors.npz``; ``anisoada
advise`` takes the end of a pilot run as the reference point of ``D_∞`` and ``D_2``.

The user's code is bad input, not a bug of this package: an exception raised while importing
the module or calling the function (a ``sys.exit`` too) is a one-line ``ValueError`` naming the
target, and :meth:`ModuleSpec.validate` builds a model and evaluates the loss on the first batch
(:func:`~anisoada.experiments.tasks.module.check_module_problem`) before any run.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from anisoada.experiments.optimizers import OptimizerSpec
from anisoada.experiments.runs.base import (
    ProblemSpecBase,
    RunOutput,
    RunSettings,
    SingleProcessRun,
    derive_seed,
    run_rows,
)
from anisoada.experiments.tasks.module import (
    ModuleProblem,
    ModuleTask,
    as_module_problem,
    check_module_problem,
    describe_exception,
)

__all__ = ["ModuleRun", "ModuleSpec", "load_module_problem"]


def _split(target: str) -> tuple[str, str]:
    if not isinstance(target, str) or target.count(":") < 1:
        raise ValueError(f"a problem is 'module:function' or 'file.py:function'; got {target!r}")
    module, _, function = target.rpartition(":")
    if not module or not function.isidentifier():
        raise ValueError(f"a problem is 'module:function' or 'file.py:function'; got {target!r}")
    return module, function


def _import(module: str, target: str) -> Any:
    path = Path(module)
    if module.endswith(".py") or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"No such problem file: {path}")
        name = (
            "anisoada_user_problem_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        )
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"cannot import {path} as a Python module")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        try:
            spec.loader.exec_module(loaded)
        except (Exception, SystemExit) as error:
            del sys.modules[name]  # half-run: the next import runs the file again
            raise ValueError(
                f"{target}: importing {path.name} raised {describe_exception(error)}; fix the file"
            ) from error
        return loaded
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise ValueError(
            f"cannot import module {module!r} ({error}); give an importable module or a "
            "path to a .py file"
        ) from None
    except (Exception, SystemExit) as error:
        raise ValueError(
            f"{target}: importing module {module} raised {describe_exception(error)}; fix the "
            "module"
        ) from error


@lru_cache(maxsize=8)
def load_module_problem(target: str, options: tuple[tuple[str, Any], ...] = ()) -> ModuleProblem:
    """Call ``target``'s function with ``options`` and check what it returns (cached)."""
    module, function = _split(target)
    loaded = _import(module, target)
    factory = getattr(loaded, function, None)
    if factory is None or not callable(factory):
        raise ValueError(f"{module!r} has no function {function!r}")
    arguments = ", ".join(f"{key}={value!r}" for key, value in options)
    try:
        returned = factory(**dict(options))
    except (Exception, SystemExit) as error:
        raise ValueError(
            f"{target}: calling {function}({arguments}) raised {describe_exception(error)}"
        ) from error
    return as_module_problem(returned, where=target)


@dataclass(frozen=True)
class ModuleSpec(ProblemSpecBase["ModuleRun"]):
    """A user's PyTorch problem on the sweep's problem axis (see the module docstring).

    Args:
        target: ``"pkg.mod:function"`` or ``"path/to/file.py:function"``.
        name: Label in results tables (default: the function's name).
        options: Keyword arguments of the function (JSON-friendly values).
        sha256: The file's content hash (set by :meth:`create` for a file target), so a changed
            file is a different problem.
    """

    kind: ClassVar[str] = "module"
    lanes: ClassVar[bool] = False

    target: str
    name: str = ""
    options: tuple[tuple[str, Any], ...] = ()
    sha256: str = ""

    def __post_init__(self) -> None:
        _split(self.target)
        if not self.name:
            object.__setattr__(self, "name", _split(self.target)[1])

    @classmethod
    def create(
        cls, target: str, *, name: str = "", options: Mapping[str, Any] | None = None
    ) -> ModuleSpec:
        """A spec with the file's hash recorded (for a ``file.py:function`` target)."""
        module, _ = _split(target)
        digest = ""
        if module.endswith(".py") or Path(module).is_file():
            path = Path(module)
            if not path.is_file():
                raise FileNotFoundError(f"No such problem file: {path}")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            target = f"{path.resolve()}:{_split(target)[1]}"
        return cls(target=target, name=name, options=tuple(sorted((options or {}).items())),
                   sha256=digest)  # fmt: skip

    def load(self) -> ModuleProblem:
        """The :class:`ModuleProblem` (cached per process)."""
        return load_module_problem(self.target, self.options)

    @property
    def stream_key(self) -> str:
        return self.name

    def init_seed(self, base_seed: int, seed: int) -> int:
        """Seed of the initial weights at a seed index (shared by every optimizer and lr)."""
        return derive_seed(base_seed, self.stream_key, "init", seed)

    def to_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"name": self.name, "target": self.target}
        if self.options:
            payload["options"] = dict(self.options)
        if self.sha256:
            payload["sha256"] = self.sha256
        return payload

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str) -> ModuleSpec:
        """A ``[[problems]]`` table with ``kind = "module"``: ``target``, ``name``, ``options``."""
        entry = dict(table)
        unknown = sorted(set(entry) - {"target", "name", "options", "sha256"})
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in {where}")
        if "target" not in entry:
            raise ValueError(f"{where} needs a target = 'module:function'")
        spec = cls.create(entry["target"], name=entry.get("name", ""),
                          options=entry.get("options"))  # fmt: skip
        if entry.get("sha256") and spec.sha256 and entry["sha256"] != spec.sha256:
            raise ValueError(f"{where}: {entry['target']} has changed since the sweep was defined")
        return spec

    def stand_in(self) -> str | None:
        return None

    def reference_loss(self) -> float | None:
        return self.load().f_star

    def validate(
        self, optimizers: Sequence[OptimizerSpec], batch_sizes: Sequence[int], settings: RunSettings
    ) -> None:
        """Import the problem, build a model and evaluate the loss on the first batch (a bad
        target or a broken contract fails before any run), and check the budget."""
        from anisoada.experiments.tasks.module import num_samples

        problem = self.load()
        n = num_samples(problem.train)
        for batch_size in batch_sizes:
            settings.budget.num_steps(batch_size, n)
        check_module_problem(problem, self.target, min(batch_sizes))

    def _run_class(self) -> type[ModuleRun]:
        return ModuleRun


@dataclass(frozen=True)
class ModuleRun(SingleProcessRun[ModuleSpec]):
    """One learning rate of one (module problem, optimizer, batch size, seed), single-threaded
    (small models lose more to thread pools than they gain)."""

    threads: ClassVar[str] = "torch"

    def _train_run(self) -> RunOutput:
        problem = self.problem.load()
        task = ModuleTask(
            problem, init_seed=self.problem.init_seed(self.settings.base_seed, self.seed)
        )
        initial = task.flat_parameters().double().numpy().copy()
        result, steps = self._train(task, task.n)
        rows = run_rows(self, result)
        vectors = {"weights": task.flat_parameters().double().numpy(), "initial": initial}
        return RunOutput(rows, result, {"steps_budget": steps, "n_train": task.n}, vectors)
