"""The checker framework behind every exercise (CONVENTIONS §4).

An :class:`Exercise` is either a *function* exercise (the reader writes a function; it is run
on hidden cases — random shapes, options, edge cases — and compared with lossbook's reference
in value, shape, dtype, NaN/inf pattern and gradient) or a *value* exercise (the reader
computes a number; it is compared with the value lossbook computes, and four significant
digits pass). A function exercise whose starter code is a short loss with a planted mistake
has ``style="find-the-bug"``.

A :class:`ChoiceExercise` asks the reader to pick one option — *which loss and why*, or
*predict, then run* (``style="predict"``: the reader commits to a prediction before a cell
reveals it). Every option carries its own explanation, so a wrong pick is told why it is wrong.

:func:`check` never raises because of the reader's answer, never hangs on it and cannot be
talked into a pass by it:

* every call of the reader's code (the function, its backward pass, ``float()`` of a value) runs
  under a per-case time limit (``Exercise.time_limit``): in the main thread a ``SIGALRM`` timer
  (``signal.setitimer``), elsewhere a watchdog thread that raises in the checked thread
  (``PyThreadState_SetAsyncExc``); the timeout is only ever raised inside the reader's code, so
  the report always comes back and the kernel survives;
* exceptions of every kind (``sys.exit()``, ``KeyboardInterrupt``), wrong shapes and dtypes,
  NaNs, detached outputs, missing gradients, tensor subclasses, sparse/nested/meta tensors,
  numbers too large for a float and objects whose ``__float__`` raises are reported in a short
  text that points at the line of the reader's own code that failed;
* the reference's results are computed (and copied) before the reader's code runs, with the
  checker's own functions and the torch/lossbook functions it relies on as they were when
  lossbook was imported: replacing ``lossbook.testing.compare``, ``torch.allclose``, a
  registered exercise or its reference changes nothing for this or any later check, and what
  the reader's function changed globally (grad mode, default dtype, patched functions) is put
  back and reported;
* an answer that modifies its inputs in place is reported; so is one that is, or calls, a
  function the exercise forbids (``Exercise.forbidden``).

The returned :class:`CheckResult` is truthy only if every case passed.
"""
from __future__ import annotations

import copy
import ctypes
import dataclasses
import functools
import importlib
import linecache
import math
import os
import signal
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .. import testing as _testing
from ..testing import compare

__all__ = ["Case", "Exercise", "Option", "ChoiceExercise", "CheckResult", "register", "check", "get", "registry",
           "randn"]


@dataclass
class Case:
    """One hidden test case: the arguments the reader's function is called with.

    ``grad=True`` also compares the gradient with respect to every floating-point tensor in
    ``args`` (backpropagating the same random upstream gradient through both outputs).
    """

    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    grad: bool = True


@dataclass
class Exercise:
    """An exercise and how to check it.

    Args:
        id: the name readers pass to :func:`check`, ``"<chapter>-<topic>"``.
        title: one line, shown in reports.
        reference: for a function exercise, lossbook's function the answer must match; for a
            value exercise, a zero-argument callable that computes the expected value (never a
            number typed in by hand).
        cases: for a function exercise, ``cases(generator) -> list[Case]``; ``None`` for a value
            exercise.
        hint: shown with the first failure: a nudge, not the recipe (the recipe is the hidden
            solution).
        rtol, atol: tolerances of the comparison (float64 cases by default). A value exercise
            also accepts any answer that agrees with the expected value to ``digits``
            significant digits.
        style: ``"implement"``, or ``"find-the-bug"`` when the starter is a loss with a planted
            mistake to fix.
        forbidden: dotted names of functions the answer must not be or call, e.g.
            ``("torch.logsumexp", "torch.Tensor.logsumexp")``; calls made from inside lossbook
            (a helper the exercise allows) are not counted.
        time_limit: seconds each case may take (the reader's forward and backward pass).
        digits: significant digits a value answer needs.
    """

    id: str
    title: str
    reference: Callable[..., Any]
    cases: Callable[[torch.Generator], Sequence[Case]] | None = None
    hint: str = ""
    rtol: float = 1e-6
    atol: float = 1e-8
    seed: int = 1234
    style: str = "implement"  # or "find-the-bug": the starter is a loss with a planted mistake to fix
    forbidden: Sequence[str] = ()
    time_limit: float = 10.0
    digits: int = 4

    def __post_init__(self) -> None:
        if self.style not in ("implement", "find-the-bug"):
            raise ValueError(f"{self.id}: style must be 'implement' or 'find-the-bug', got {self.style!r}")
        if self.time_limit <= 0:
            raise ValueError(f"{self.id}: time_limit must be positive, got {self.time_limit!r}")

    @property
    def kind(self) -> str:
        return "value" if self.cases is None else "function"


@dataclass
class Option:
    """One answer of a :class:`ChoiceExercise` and why it is right or wrong (shown when picked)."""

    text: str
    why: str


@dataclass
class ChoiceExercise:
    """A multiple-choice exercise: *which loss and why*, or *predict, then run*.

    Args:
        id: the name readers pass to :func:`check`.
        title: one line, shown in reports.
        options: ``{"a": Option(text, why), "b": ...}``; every option, right or wrong, explains itself.
        answer: the key of the right option.
        hint: shown with a wrong pick, before the explanation of why it is wrong.
        style: ``"choice"`` (which loss and why) or ``"predict"`` (commit to a prediction, then run).

    The reader answers with the option's key: ``check("rank-which-loss", "b")``.
    """

    id: str
    title: str
    options: dict[str, Option]
    answer: str
    hint: str = ""
    style: str = "choice"

    kind = "choice"

    def __post_init__(self) -> None:
        if self.answer not in self.options:
            raise ValueError(f"{self.id}: the answer {self.answer!r} is not one of the options {sorted(self.options)}")
        if len(self.options) < 2:
            raise ValueError(f"{self.id}: a choice exercise needs at least two options")
        if self.style not in ("choice", "predict"):
            raise ValueError(f"{self.id}: style must be 'choice' or 'predict', got {self.style!r}")


_REGISTRY: dict[str, Exercise | ChoiceExercise] = {}
# id -> (the registered object, a private copy of it taken at registration): what is checked
_SEALED: dict[str, tuple[Any, Any]] = {}


def _seal_copy(exercise: Exercise | ChoiceExercise) -> Exercise | ChoiceExercise:
    sealed = copy.copy(exercise)
    if isinstance(exercise, ChoiceExercise):
        sealed.options = copy.deepcopy(exercise.options)
    if isinstance(exercise, Exercise):
        sealed.forbidden = tuple(exercise.forbidden)
    return sealed


def register(exercise: Exercise | ChoiceExercise) -> Exercise | ChoiceExercise:
    """Add an exercise to the registry (ids are unique).

    The checker keeps a private copy: changing the registered object (or the registry entry)
    later does not change what :func:`check` compares with.
    """
    if exercise.id in _REGISTRY:
        raise ValueError(f"an exercise with id {exercise.id!r} is already registered")
    _REGISTRY[exercise.id] = exercise
    _SEALED[exercise.id] = (exercise, _seal_copy(exercise))
    return exercise


def registry() -> dict[str, Exercise]:
    """A copy of the registry: ``{id: Exercise}``."""
    return dict(_REGISTRY)


def get(exercise_id: str) -> Exercise:
    """The registered exercise (``KeyError`` listing the known ids otherwise)."""
    try:
        return _REGISTRY[exercise_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"no exercise {exercise_id!r}; known exercises: {known}") from None


def randn(gen: torch.Generator, *shape: int, scale: float = 1.0, dtype=torch.float64) -> Tensor:
    """Random normal test data from the exercise's own generator (float64 by default)."""
    return torch.randn(shape, generator=gen, dtype=dtype) * scale  # randn(gen) is 0-d


@dataclass
class CheckResult:
    """What :func:`check` found. Truthy only if every case passed."""

    exercise_id: str
    passed: int
    total: int
    report: str
    failures: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.total > 0 and self.passed == self.total

    def __repr__(self) -> str:
        status = "all passed" if self else "not passed"
        return f"<CheckResult {self.exercise_id!r}: {self.passed}/{self.total} cases, {status}>"


# --------------------------------------------------------------------------------------------
# formatting (never calls the reader's __repr__, __str__ or __float__)

_THIS_FILE = os.path.abspath(__file__)
_LOSSBOOK_DIR = os.path.dirname(os.path.dirname(_THIS_FILE)) + os.sep
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep


def _is_plain_tensor(x: Any) -> bool:
    return type(x) is Tensor or type(x) is torch.nn.Parameter


def _tensor_kind_problem(x: Tensor, what: str) -> str | None:
    """Why ``x`` (a Tensor of any type) cannot be compared as a dense tensor, or None."""
    if not _is_plain_tensor(x):
        return (f"{what} is a {type(x).__name__}, a subclass of torch.Tensor: return a plain torch.Tensor "
                "(a subclass can change how it is compared)")
    if x.is_nested:
        return f"{what} is a nested tensor: return an ordinary (dense) tensor"
    if x.layout != torch.strided:
        return f"{what} is a {str(x.layout).replace('torch.', '')} tensor: return a dense tensor (.to_dense())"
    if x.is_meta:
        return f"{what} is a tensor on the 'meta' device, which has a shape but no values"
    return None


def _fmt(x: Any, limit: int = 8) -> str:
    if isinstance(x, Tensor) and _is_plain_tensor(x) and _tensor_kind_problem(x, "") is None:
        t = x.detach()
        head = f"tensor of shape {tuple(t.shape)}, {str(t.dtype).replace('torch.', '')}"
        if t.numel() == 0:
            return head + " (empty)"
        if t.numel() <= limit:
            vals = ", ".join(_num(v) for v in t.flatten().tolist())
            return f"{head}: [{vals}]"
        return head
    if type(x) is float:
        return _num(x)
    if type(x) is int and x.bit_length() > 100:
        return f"an integer of about {_int_digits(x)} digits"
    if type(x) in (int, bool) or x is None or x is Ellipsis:
        return repr(x)
    if type(x) is str:
        text = repr(x)
        return text if len(text) < 80 else text[:77] + "..."
    if type(x) in (list, tuple) and len(x) <= limit:
        inner = ", ".join(_fmt(v) for v in x)
        return f"[{inner}]" if type(x) is list else f"({inner}{',' if len(x) == 1 else ''})"
    if type(x) in (list, tuple):
        return f"a {type(x).__name__} of {len(x)} items"
    if isinstance(x, Tensor):
        return f"a {type(x).__name__}"
    return f"an object of type {type(x).__name__}"


def _int_digits(x: int) -> int:
    return int(abs(x).bit_length() * 0.30103) + 1  # str() of a huge int raises ValueError


def _num(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.6g}"
    return str(v)


def _describe_case(case: Case) -> str:
    parts = [_fmt(a) for a in case.args]
    parts += [f"{k}={_fmt(v)}" for k, v in case.kwargs.items()]
    return ", ".join(parts)


def _is_own_code(filename: str) -> bool:
    """True for files of the reader (a notebook cell, their script), False for lossbook/torch/Python."""
    path = os.path.abspath(filename) if not filename.startswith("<") else filename
    if path.startswith((_LOSSBOOK_DIR, _TORCH_DIR)) or path == _THIS_FILE:
        return False
    if filename.startswith("<frozen") or os.sep + "site-packages" + os.sep in path:
        return False
    return not path.startswith(os.path.dirname(os.__file__) + os.sep)  # the standard library


def _where(exc: BaseException) -> str:
    """`` (your code: line N of ..., `source`)`` for the deepest frame of the reader's own code."""
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_own_code(f.filename)]
        if not frames:
            return ""
        f = frames[-1]
        src = (f.line or linecache.getline(f.filename, f.lineno)).strip()
        base = os.path.basename(f.filename)
        in_cell = "ipykernel_" in f.filename or f.filename.startswith("<ipython-input")
        place = f"line {f.lineno} of your cell" if in_cell else f"{base}, line {f.lineno}"
        where = f"{place}, in {f.name}"
        return f" (at {where}: `{src[:100]}`)" if src else f" (at {where})"
    except Exception:  # pragma: no cover - a traceback we cannot read
        return ""


def _raised_in_own_code(exc: BaseException) -> bool:
    """The innermost frame of the traceback is the reader's (``raise NotImplementedError`` of a starter)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and _is_own_code(tb.tb_frame.f_code.co_filename)


def _exc_text(exc: BaseException) -> str:
    name = type(exc).__name__
    if isinstance(exc, SystemExit):
        return "SystemExit (sys.exit() was called; a checked function returns its result instead)"
    if isinstance(exc, KeyboardInterrupt):
        return "KeyboardInterrupt (the run was interrupted)"
    try:
        msg = str(exc)
    except BaseException:  # noqa: BLE001 - the reader's exception may have a broken __str__
        msg = "(its message could not be shown)"
    msg = msg.strip().splitlines()[0] if msg.strip() else ""
    if len(msg) > 200:
        msg = msg[:197] + "..."
    return f"{name}: {msg}" if msg else name


# --------------------------------------------------------------------------------------------
# the time limit


class _Timeout(BaseException):
    """Raised inside the reader's code when a case runs past its time limit."""


class _Deadline:
    """Interrupt the calling thread's Python code (never the checker's own frames) after ``seconds``.

    In the main thread a ``SIGALRM`` interval timer (it also interrupts ``time.sleep``); in any
    other thread a watchdog thread that raises :class:`_Timeout` in it with
    ``PyThreadState_SetAsyncExc``. It fires again every quarter second until disarmed, so an
    answer that swallows one timeout with a bare ``except:`` is still stopped.
    """

    REFIRE = 0.25

    def __init__(self, seconds: float):
        self.seconds = max(float(seconds), 1e-3)
        self.armed = False
        self.fired = False
        self._use_signal = (threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"))
        self._old_handler = None
        self._old_timer = (0.0, 0.0)
        self._armed_at = 0.0
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._tid = threading.get_ident()

    # -- the signal way
    def _handler(self, signum, frame):
        if not self.armed:
            return
        if frame is not None and frame.f_code.co_filename == _THIS_FILE:
            return  # in the checker itself: the checker notices `fired` when the call returns
        self.fired = True
        raise _Timeout

    # -- the thread way
    def _watch(self) -> None:
        delay = self.seconds
        while not self._done.wait(delay):
            with self._lock:
                if not self.armed:
                    return
                frame = sys._current_frames().get(self._tid)
                if frame is None or frame.f_code.co_filename == _THIS_FILE:
                    delay = 0.01
                    continue
                self.fired = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._tid), ctypes.py_object(_Timeout))
                delay = self.REFIRE

    def arm(self) -> None:
        self.armed = True
        if self._use_signal:
            try:
                self._old_handler = signal.signal(signal.SIGALRM, self._handler)
            except (ValueError, OSError):  # signals unavailable here (an embedding host): use the watchdog
                self._use_signal = False
        if self._use_signal:
            self._armed_at = time.monotonic()
            self._old_timer = signal.setitimer(signal.ITIMER_REAL, self.seconds, self.REFIRE)
        else:
            threading.Thread(target=self._watch, daemon=True, name="lossbook-check-deadline").start()

    def disarm(self) -> None:
        self.armed = False  # first: from here on the handler and the watchdog do nothing
        if self._use_signal:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            if self._old_handler is not None:
                signal.signal(signal.SIGALRM, self._old_handler)
                self._old_handler = None
                delay, interval = self._old_timer
                if delay > 0:  # somebody else's timer (e.g. pytest-timeout) keeps running
                    left = max(delay - (time.monotonic() - self._armed_at), 1e-3)
                    signal.setitimer(signal.ITIMER_REAL, left, interval)
        else:
            with self._lock:
                if self.fired:  # clear a timeout that is still pending in this thread
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._tid), None)
            self._done.set()


@dataclass
class _Outcome:
    value: Any = None
    exc: BaseException | None = None
    timed_out: bool = False


def _limited(seconds: float, fn: Callable, *args: Any, **kwargs: Any) -> _Outcome:
    """Run the reader's ``fn(*args, **kwargs)`` under a time limit; never raises."""
    deadline = _Deadline(seconds)
    out = _Outcome()
    try:
        try:
            deadline.arm()
            out.value = fn(*args, **kwargs)
        finally:
            deadline.disarm()
    except _Timeout:
        out.timed_out = True
    except BaseException as exc:  # noqa: BLE001 - the reader's code failed: report, never propagate
        out.exc = exc
    if deadline.fired:
        out.timed_out = True
    return out


def _timeout_text(seconds: float) -> str:
    return (f"took longer than {seconds:g} s and was stopped (an endless loop? a loop over every element "
            "of a large tensor?)")


# --------------------------------------------------------------------------------------------
# the checker's environment: functions as they were at import, whatever the reader patched


_MISSING = object()
_LAZY_NAMES = frozenset({"__slotnames__"})  # added to a class by copy.copy (copyreg's cache)


class _Environment:
    """Identity snapshots of the attributes the checker (and the references) rely on.

    ``deviations()`` lists what differs from the snapshot now; ``apply(devs)`` sets the
    attributes to the snapshot plus ``devs``; ``apply({})`` is the pristine state.
    """

    def __init__(self) -> None:
        self._owners: dict[int, tuple[Any, dict[str, Any], bool, bool]] = {}

    def add(self, owner: Any, *, callables_only: bool, track_added: bool, checker: bool = False) -> None:
        if id(owner) in self._owners:
            return
        skip_dunder = isinstance(owner, types.ModuleType)  # a class's __eq__, __bool__ ... matter
        items = {k: v for k, v in vars(owner).items()
                 if not (skip_dunder and k.startswith("__")) and (not callables_only or callable(v))}
        self._owners[id(owner)] = (owner, items, track_added, checker, skip_dunder, frozenset(vars(owner)))

    def deviations(self, *, checker: bool | None = None) -> dict[tuple[int, str], Any]:
        devs: dict[tuple[int, str], Any] = {}
        for key, (owner, items, track_added, is_checker, skip_dunder, known) in self._owners.items():
            if checker is not None and is_checker != checker:
                continue
            now = vars(owner)
            for name, orig in items.items():
                cur = now.get(name, _MISSING)
                if cur is not orig:
                    devs[(key, name)] = cur
            if track_added:
                for name in now.keys() - known:
                    if not (skip_dunder and name.startswith("__")) and name not in _LAZY_NAMES:
                        devs[(key, name)] = now[name]
        return devs

    def apply(self, devs: dict[tuple[int, str], Any], *, checker: bool | None = None) -> None:
        current = self.deviations(checker=checker)
        for (key, name) in set(current) | set(devs):
            owner, items = self._owners[key][:2]
            want = devs.get((key, name), items.get(name, _MISSING))
            if vars(owner).get(name, _MISSING) is want:
                continue
            if want is _MISSING:
                try:
                    delattr(owner, name)
                except AttributeError:
                    pass
            else:
                setattr(owner, name, want)

    def names(self, devs: dict[tuple[int, str], Any]) -> list[str]:
        out = []
        for key, name in devs:
            owner = self._owners[key][0]
            out.append(f"{getattr(owner, '__name__', type(owner).__name__)}.{name}")
        return sorted(out)


_ENV = _Environment()
_CHECKER_CLASSES = (Case, Exercise, Option, ChoiceExercise)  # CheckResult is added below with the rest


def _snapshot_environment() -> None:
    """Record the checker's own modules and classes, lossbook's modules and torch's namespaces."""
    for owner in (sys.modules[__name__], _testing, *_CHECKER_CLASSES, CheckResult):
        _ENV.add(owner, callables_only=False, track_added=True, checker=True)
    for owner in (torch, torch.nn.functional, torch.special, torch.linalg, torch.autograd, torch.Tensor):
        _ENV.add(owner, callables_only=True, track_added=owner is torch.Tensor)
    for name, module in list(sys.modules.items()):
        if (name == "lossbook" or name.startswith("lossbook.")) and module is not None:
            _ENV.add(module, callables_only=True, track_added=False, checker=name.startswith("lossbook.exercises"))


# --------------------------------------------------------------------------------------------
# comparison


def _compare(expected: Any, got: Any, rtol: float, atol: float, what: str) -> str | None:
    """None if ``got`` matches ``expected``, otherwise a one-line reason (see lossbook.testing)."""
    try:
        return compare(expected, got, rtol=rtol, atol=atol, what=what)
    except Exception as exc:  # noqa: BLE001 - e.g. a result on a device the expected values cannot reach
        return f"{what} could not be compared with the reference ({_exc_text(exc)})"


def _same_values(a: Tensor, b: Tensor) -> bool:
    """``a`` and ``b`` hold the same values (NaN equal to NaN)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    a, b = a.detach(), b.detach().to(a.device)
    if a.is_floating_point() or a.is_complex():
        return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
    return torch.equal(a, b)


def _prepare_args(case: Case) -> tuple[list[Any], list[int]]:
    """Fresh leaf copies of the case's tensors; floating ones require grad if the case does."""
    args, grad_idx = [], []
    for i, a in enumerate(case.args):
        if isinstance(a, Tensor):
            a = a.detach().clone()
            if case.grad and a.is_floating_point():
                a.requires_grad_(True)
                grad_idx.append(i)
        args.append(copy.deepcopy(a) if isinstance(a, (list, dict)) else a)
    return args, grad_idx


def _copy_kwargs(case: Case) -> dict:
    return {k: (v.detach().clone() if isinstance(v, Tensor) else copy.deepcopy(v)) for k, v in case.kwargs.items()}


# --------------------------------------------------------------------------------------------
# forbidden functions


class _ForbiddenCall(Exception):
    """Raised when the reader's code calls a function the exercise forbids."""


def _resolve(path: str) -> tuple[Any, str, Any] | None:
    """``(owner, attribute name, object)`` for a dotted name such as ``torch.nn.functional.huber_loss``."""
    found = _owner_of(path)
    if found is None:
        return None
    owner, name = found
    obj = getattr(owner, name, _MISSING)
    return None if obj is _MISSING else (owner, name, obj)


@functools.cache
def _owner_of(path: str) -> tuple[Any, str] | None:
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:-1]:
                owner = getattr(owner, attr)
        except AttributeError:
            return None
        return owner, parts[-1]
    return None


def _is_forbidden_object(answer: Any, forbidden: Sequence[str]) -> str | None:
    for path in forbidden:
        found = _resolve(path)
        if found is None:
            continue
        obj = found[2]
        target = answer.func if isinstance(answer, functools.partial) else answer
        if target is obj:
            return path
    return None


class _Recorder:
    """Replaces the forbidden functions while the reader's code runs; records who called them."""

    def __init__(self, forbidden: Sequence[str]):
        self.called: list[str] = []
        self._patched: list[tuple[Any, str, Any]] = []
        self._forbidden = [(p, r) for p in forbidden if (r := _resolve(p)) is not None]

    def __enter__(self) -> _Recorder:
        for path, (owner, name, obj) in self._forbidden:
            self._patched.append((owner, name, vars(owner).get(name, _MISSING)))
            setattr(owner, name, self._make(path, obj))
        return self

    def _make(self, path: str, original: Callable) -> Callable:
        recorder = self

        def forbidden(*args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if os.path.abspath(caller).startswith(_LOSSBOOK_DIR) and caller != _THIS_FILE:
                return original(*args, **kwargs)  # a lossbook helper the exercise allows uses it
            recorder.called.append(path)
            raise _ForbiddenCall(f"{path} is not allowed in this exercise")

        return forbidden

    def __exit__(self, *exc: Any) -> None:
        for owner, name, before in reversed(self._patched):
            if before is _MISSING:
                try:
                    delattr(owner, name)
                except AttributeError:
                    pass
            else:
                setattr(owner, name, before)
        self._patched.clear()


def _forbidden_text(path: str, is_it: bool) -> str:
    verb = "is" if is_it else "calls"
    return (f"your function {verb} {path}, which this exercise asks you to write yourself "
            "(build it from the elementary operations the section uses)")


# --------------------------------------------------------------------------------------------
# running one case


@dataclass
class _Session:
    """What one call of :func:`check` shares between its cases."""

    ex: Exercise
    learner_env: dict
    notes: list[str]
    default_dtype: torch.dtype

    def run_answer(self, fn: Callable, *args: Any, **kwargs: Any) -> tuple[_Outcome, list[str]]:
        """Call the reader's code in the reader's environment, under the limit and the recorder."""
        _ENV.apply(self.learner_env, checker=False)
        recorder = _Recorder(self.ex.forbidden if isinstance(self.ex, Exercise) else ())
        try:
            with recorder:
                out = _limited(self.ex.time_limit, fn, *args, **kwargs)
        finally:
            changed = _ENV.deviations(checker=False)
            side_effects = {k: v for k, v in changed.items() if self.learner_env.get(k, _MISSING) is not v}
            side_effects.update({k: v for k, v in self.learner_env.items() if k not in changed})
            checker_devs = _ENV.deviations(checker=True)
            _ENV.apply({})  # pristine again for the checker's own work
            self._restore_modes()
        replaced = _ENV.names({**side_effects, **checker_devs})
        if replaced:
            self._note(f"your function replaced {', '.join(replaced[:4])}{' …' if len(replaced) > 4 else ''}: "
                       "the checker used the originals and put them back")
        return out, recorder.called

    def _restore_modes(self) -> None:
        if not torch.is_grad_enabled():
            self._note("your function switched gradient tracking off (torch.set_grad_enabled(False) or similar); "
                       "the checker switched it back on")
            torch.set_grad_enabled(True)
        if torch.get_default_dtype() != self.default_dtype:
            self._note(f"your function changed the default dtype to {torch.get_default_dtype()}; the checker "
                       f"restored {self.default_dtype}")
            torch.set_default_dtype(self.default_dtype)

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def _check_result_tensor(got: Any, expected: Any, what: str) -> str | None:
    if isinstance(expected, Tensor) and isinstance(got, Tensor):
        return _tensor_kind_problem(got, what)
    return None


def _run_case(session: _Session, fn: Callable, case: Case, gen: torch.Generator) -> str | None:
    ex = session.ex
    # 1. the reference, before the reader's code runs: values, upstream gradient, gradients (copied)
    ref_args, grad_idx = _prepare_args(case)
    expected = ex.reference(*ref_args, **_copy_kwargs(case))
    want_grad = bool(grad_idx) and isinstance(expected, Tensor) and expected.requires_grad
    ref_grads: list[Tensor | None] = []
    upstream = None
    if want_grad:
        upstream = torch.randn(expected.shape, generator=gen, dtype=expected.dtype)
        ref_grads = [None if g is None else g.detach().clone() for g in
                     torch.autograd.grad(expected, [ref_args[i] for i in grad_idx], upstream, allow_unused=True)]
    expected = expected.detach().clone() if isinstance(expected, Tensor) else copy.deepcopy(expected)

    # 2. the reader's function, on its own copies
    args, _ = _prepare_args(case)
    kwargs = _copy_kwargs(case)
    versions = [a._version if isinstance(a, Tensor) else None for a in args]
    out, called = session.run_answer(fn, *args, **kwargs)
    if called:
        return _forbidden_text(called[0], is_it=False)
    if out.timed_out:
        return _timeout_text(ex.time_limit)
    if out.exc is not None:
        if isinstance(out.exc, NotImplementedError) and _raised_in_own_code(out.exc):
            raise NotImplementedError
        return f"your function raised {_exc_text(out.exc)}{_where(out.exc)}"
    got = out.value
    for i, (a, original, v) in enumerate(zip(args, case.args, versions)):
        if isinstance(a, Tensor) and (a._version != v or not _same_values(original, a)):
            return (f"your function modified its argument {i + 1} in place; a loss must leave its inputs as they "
                    "were (work on a copy, or use out-of-place operations such as torch.where)")
    problem = _check_result_tensor(got, expected, "the result") or _compare(expected, got, ex.rtol, ex.atol,
                                                                             "the result")
    if problem:
        return problem
    if not want_grad:
        return None
    if not got.requires_grad:
        return ("the result has no gradient (requires_grad is False): it was detached, or computed "
                "through .item(), .numpy(), Python floats or an in-place copy")

    # 3. the reader's backward pass (it may run the reader's own autograd.Function)
    out, called = session.run_answer(torch.autograd.grad, got, [args[i] for i in grad_idx],
                                     upstream.to(got.device), allow_unused=True)
    if called:
        return _forbidden_text(called[0], is_it=False)
    if out.timed_out:
        return "the backward pass " + _timeout_text(ex.time_limit)
    if out.exc is not None:
        return f"backpropagating through your result failed: {_exc_text(out.exc)}{_where(out.exc)}"
    for i, rg, g in zip(grad_idx, ref_grads, out.value):
        if rg is None:
            continue
        if g is None:
            return f"no gradient reaches argument {i + 1} of your function"
        what = f"the gradient with respect to argument {i + 1}"
        problem = _tensor_kind_problem(g, what) or _compare(rg, g, max(ex.rtol, 1e-5), max(ex.atol, 1e-7), what)
        if problem:
            return problem
    return None


# --------------------------------------------------------------------------------------------
# value answers


def _as_numbers(session: _Session, x: Any, depth: int = 0) -> list | float | str:
    """The reader's value as (nested lists of) Python floats, or a str saying why it is not a number."""
    if depth > 8:
        return "your answer is nested too deeply"
    if type(x) is bool:
        return "your answer should be a number, got True/False"
    if type(x) is int:
        try:
            return float(x)
        except OverflowError:
            return f"your answer is an integer of about {_int_digits(x)} digits, too large to be a float"
    if type(x) is float:
        return x
    if isinstance(x, Tensor):
        problem = _tensor_kind_problem(x, "your answer")
        if problem:
            return problem
        return _as_numbers(session, x.detach().to("cpu", torch.float64).tolist(), depth + 1)
    if type(x) in (list, tuple):
        items = [_as_numbers(session, v, depth + 1) for v in x]
        for item in items:
            if isinstance(item, str):
                return item
        return items
    if type(x).__module__ == "numpy" and hasattr(x, "tolist"):
        out, _ = session.run_answer(x.tolist)
        if out.exc is None and not out.timed_out and type(out.value) in (list, float, int, bool):
            return _as_numbers(session, out.value, depth + 1)
    if x is None or x is Ellipsis:
        return "not answered yet: replace the placeholder with your value"
    if type(x) is str:
        return f"your answer should be a number or a list of numbers, got the string {_fmt(x)}"
    if hasattr(type(x), "__float__"):
        out, _ = session.run_answer(float, x)
        if out.timed_out:
            return "float() of your answer " + _timeout_text(session.ex.time_limit)
        if out.exc is not None:
            return f"float() of your answer raised {_exc_text(out.exc)}"
        if type(out.value) is not float:
            return "float() of your answer did not return a float"
        return out.value
    return f"your answer should be a number or a list of numbers, got {_fmt(x)}"


def _sig_round(v: float, digits: int) -> float:
    if v == 0 or not math.isfinite(v):
        return v
    return round(v, digits - 1 - math.floor(math.log10(abs(v))))


def _digits_given(v: float) -> int:
    """How many significant digits the number ``v`` was written with (``0.47`` -> 2)."""
    if v == 0 or not math.isfinite(v):
        return 17
    for k in range(1, 17):
        if _sig_round(v, k) == v:
            return k
    return 17


def _within_digits(expected: float, got: float, digits: int) -> bool:
    """``got`` agrees with ``expected`` rounded to ``digits`` significant digits."""
    if not (math.isfinite(expected) and math.isfinite(got)):
        return expected == got or (math.isnan(expected) and math.isnan(got))
    if expected == 0:
        return got == 0
    unit = 10.0 ** (math.floor(math.log10(abs(expected))) - digits + 1)
    return abs(got - expected) <= 0.5 * unit * (1 + 1e-9) + 1e-300


def _check_value(session: _Session, answer: Any) -> str | None:
    ex = session.ex
    expected = ex.reference()
    e = torch.as_tensor(expected.detach() if isinstance(expected, Tensor) else expected, dtype=torch.float64)
    got = _as_numbers(session, answer)
    if isinstance(got, str):
        return got
    try:
        g = torch.tensor(got, dtype=torch.float64)
    except (TypeError, ValueError):
        return "your answer is a ragged list: give one number per expected value"
    if g.numel() != e.numel():
        return f"your answer should have {e.numel()} value(s), got {g.numel()}"
    ev, gv = e.flatten().tolist(), g.flatten().tolist()
    close = _compare(e.flatten(), g.flatten(), ex.rtol, ex.atol, "your answer") is None
    if close or all(_within_digits(a, b, ex.digits) for a, b in zip(ev, gv)):
        return None
    short = [(a, b, _digits_given(b)) for a, b in zip(ev, gv) if not _within_digits(a, b, ex.digits)]
    if all(k < ex.digits and _within_digits(a, b, k) for a, b, k in short):
        k = max(k for _, _, k in short)
        return (f"your answer agrees with the expected value to the {k} significant digit{'s' * (k > 1)} you gave: "
                f"give at least {ex.digits} significant digits")
    if len(ev) == 1:
        return f"your answer {_num(gv[0])} differs from the expected value"
    bad = [i for i, (a, b) in enumerate(zip(ev, gv)) if not _within_digits(a, b, ex.digits)]
    return f"value {bad[0] + 1} of your answer ({_num(gv[bad[0]])}) differs from the expected value"


# --------------------------------------------------------------------------------------------
# choice answers


def _check_choice(ex: ChoiceExercise, answer: Any) -> tuple[str | None, str | None]:
    """``(problem, explanation)``: problem is None for the right key; explanation is the picked option's."""
    keys = ", ".join(repr(k) for k in ex.options)
    if answer is None or answer is Ellipsis:
        return f"not answered yet: replace the placeholder with one of {keys}", None
    if not isinstance(answer, str):
        return f"answer with the key of an option as a string, one of {keys}; got {_fmt(answer)}", None
    key = str.lower(str.strip(str.strip(str.strip(answer), "()")))
    if key not in ex.options:
        return f"{_fmt(str.__str__(answer))} is not an option; answer with one of {keys}", None
    why = ex.options[key].why
    if key != ex.answer:
        says = str.lower(why).startswith(("no", "wrong", "not "))  # the explanation already says so
        return (f"({key}) — {why}" if says else f"({key}) is not right: {why}"), why
    return None, why


# --------------------------------------------------------------------------------------------
# the public entry point


def _differs(a: Any, b: Any) -> bool:
    if a is b:
        return False
    plain = (dict, tuple, list, str, float, int)
    return not (type(a) in plain and type(a) is type(b) and a == b)


def _unregister(exercise_id: str) -> None:
    """Remove an exercise (for tests that register temporary ones)."""
    _REGISTRY.pop(exercise_id, None)
    _SEALED.pop(exercise_id, None)


def _lookup(exercise_id: Any, notes: list[str]) -> Exercise | ChoiceExercise | None:
    if type(exercise_id) is not str or exercise_id not in _REGISTRY:
        return None
    live = _REGISTRY[exercise_id]
    sealed = _SEALED.get(exercise_id)
    if sealed is None:
        return live  # placed in the registry directly (tests do)
    original, pristine = sealed
    if live is not original or any(_differs(getattr(original, f.name, _MISSING), getattr(pristine, f.name))
                                   for f in dataclasses.fields(pristine)):
        notes.append("this exercise was replaced or modified after it was registered: the checker uses the original")
    return pristine


def _progress(quiet: bool, start: float, k: int, n: int, state: dict) -> None:
    """``case k of n`` on one carriage-return line, once a check has taken more than a second."""
    if quiet or n <= 1 or os.environ.get("LOSSBOOK_PROGRESS") == "summary":
        return
    if time.monotonic() - start > 1.0:
        print(f"\r  checking case {k} of {n} …", end="", flush=True)
        state["shown"] = True


def check(exercise_id: str, answer: Any, *, quiet: bool = False) -> CheckResult:
    """Check a reader's answer and print a short report.

    Args:
        exercise_id: the id shown in the exercise, e.g. ``"softmax-logsumexp"``.
        answer: a function (function exercises), a number / list / tensor (value exercises), or
            the key of an option, e.g. ``"b"`` (choice exercises).
        quiet: do not print the report (it is still in ``result.report``).

    Returns:
        A :class:`CheckResult`; ``bool(result)`` is True only if every case passed.
    """
    # The checker's own functions and classes exactly as imported (a reader's cell may have patched them).
    notes: list[str] = []
    _snapshot_environment()  # lossbook modules imported since
    checker_devs = _ENV.deviations(checker=True)
    if checker_devs:
        notes.append(f"{', '.join(_ENV.names(checker_devs)[:4])} had been replaced: the checker restored "
                     "the original")
        _ENV.apply({}, checker=True)
    learner_env = _ENV.deviations(checker=False)
    grad_mode, default_dtype = torch.is_grad_enabled(), torch.get_default_dtype()
    default_device = torch.get_default_device()
    try:
        _ENV.apply({}, checker=False)
        if default_device.type != "cpu":  # the hidden cases are made on the CPU, as the references expect
            torch.set_default_device("cpu")
        with torch.inference_mode(False), torch.enable_grad():
            result = _check(exercise_id, answer, quiet, notes, learner_env, default_dtype)
    except BaseException as exc:  # noqa: BLE001 - never raise because of the reader's answer
        msg = f"✘ the check was interrupted: {_exc_text(exc)}"
        result = CheckResult(str(exercise_id) if type(exercise_id) is str else "?", 0, 1, msg, [msg])
    finally:
        _ENV.apply({}, checker=True)
        _ENV.apply(learner_env, checker=False)
        torch.set_grad_enabled(grad_mode)
        torch.set_default_dtype(default_dtype)
        if torch.get_default_device() != default_device:
            torch.set_default_device(default_device)
    if not quiet:
        print(result.report)
    return result


def _check(exercise_id: Any, answer: Any, quiet: bool, notes: list[str], learner_env: dict,
           default_dtype: torch.dtype) -> CheckResult:
    lines: list[str] = []
    failures: list[str] = []
    ex = _lookup(exercise_id, notes)
    if ex is None:
        prefix = exercise_id.split("-")[0] if type(exercise_id) is str else ""
        close = [k for k in _REGISTRY if prefix and prefix in k]
        msg = f"✘ There is no exercise called {_fmt(exercise_id)}." + (
            f" Did you mean one of: {', '.join(sorted(close))}?" if close else ""
        )
        return CheckResult(str(exercise_id) if type(exercise_id) is str else "?", 0, 0, msg, [msg])

    session = _Session(ex, learner_env, notes, default_dtype)
    lines.append(f"{ex.title} [{ex.id}]")
    if ex.kind == "choice":
        total = 1
        problem, explanation = _check_choice(ex, answer)
        passed = 0 if problem else 1
        if problem:
            failures.append(problem)
            lines.append(f"  ✘ {problem}")
            if explanation is not None and ex.hint:
                lines.append(f"  hint: {ex.hint}")
        else:
            says = str.lower(explanation).startswith(("right", "correct", "yes"))
            lines.append(f"  ✔ ({ex.answer}) — {explanation}" if says else f"  ✔ ({ex.answer}) is right: {explanation}")
    elif ex.kind == "value":
        total = 1
        problem = _check_value(session, answer)
        passed = 0 if problem else 1
        if problem:
            failures.append(problem)
            lines.append(f"  ✘ {problem}")
            if ex.hint and not problem.startswith("not answered"):
                lines.append(f"  hint: {ex.hint}")
        else:
            lines.append("  ✔ correct")
    else:
        gen = torch.Generator().manual_seed(ex.seed)
        cases = list(ex.cases(gen))
        total, passed = len(cases), 0
        start, shown = time.monotonic(), {}
        forbidden = _is_forbidden_object(answer, ex.forbidden) if ex.forbidden else None
        if not callable(answer):
            problem = f"expected a function, got {_fmt(answer)}"
            failures.append(problem)
            lines.append(f"  ✘ {problem}")
        elif forbidden:
            problem = _forbidden_text(forbidden, is_it=True)
            failures.append(problem)
            lines.append(f"  ✘ {problem}")
        else:
            for k, case in enumerate(cases, 1):
                _progress(quiet, start, k, total, shown)
                try:
                    problem = _run_case(session, answer, case, gen)
                except NotImplementedError:
                    problem = "not implemented yet: replace `raise NotImplementedError` with your code"
                    failures.append(problem)
                    lines.append(f"  ✘ {problem}")
                    break
                if problem is None:
                    passed += 1
                    continue
                failures.append(problem)
                lines.append(f"  ✘ case {k} of {total}, '{case.name}', failed: {problem}")
                lines.append(f"    input: {_describe_case(case)}")
                try:
                    ref_args, _ = _prepare_args(Case(case.name, case.args, case.kwargs, grad=False))
                    lines.append(f"    expected: {_fmt(ex.reference(*ref_args, **_copy_kwargs(case)))}")
                except Exception:  # pragma: no cover - the reference itself is tested
                    pass
                if ex.hint:
                    lines.append(f"    hint: {ex.hint}")
                break  # the first failure is the useful one
        if shown:
            print("\r" + " " * 40 + "\r", end="", flush=True)
        if not failures:
            lines.append(f"  ✔ all {total} cases passed (values, shapes, dtypes and gradients)")
        else:
            lines.append(f"  {passed}/{total} cases passed before the first failure")
    lines += [f"  note: {n}" for n in notes]
    report = "\n".join(lines)
    return CheckResult(ex.id, passed, total, report, failures)


_snapshot_environment()  # last: every function of this module exists now
