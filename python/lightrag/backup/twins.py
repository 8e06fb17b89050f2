"""Every method has an async twin named the LightRAG way (``create_snapshot`` /
``acreate_snapshot``); the twins are made here, never written by hand twice:

- :func:`on_loop` makes the sync twin of an async implementation (run on the loop LightRAG's
  own sync wrappers use; refused inside a running loop, with the name of the async one);
- :func:`on_thread` makes the async twin of a blocking implementation (run on a worker
  thread: it waits on the network, disks or the engine);
- :func:`engine_twins` makes both of a method that prepares one engine operation and reads
  its result: the sync one runs it on this thread (no event loop: the CLI starts faster), the
  async one awaits it.

A twin carries its implementation's signature (``inspect.signature``) and documentation; the
async twin of a sync method says whose twin it is. Imports nothing of ours but errors.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Concatenate, Coroutine, ParamSpec, TypeVar

from .errors import InvalidInputError

P = ParamSpec("P")
S = TypeVar("S")
T = TypeVar("T")

#: What a method made by :func:`engine_twins` prepares: the engine operation, and what turns
#: its JSON result into the method's value.
Prepared = tuple[Any, Callable[[str], T]]


def run_sync(coroutine: Coroutine[Any, Any, T], twin: str = "") -> T:
    """Run a coroutine from sync code, on the loop LightRAG's own sync wrappers use. Inside a
    running event loop that would deadlock: refused, naming the async ``twin`` to await."""
    import asyncio  # imported here: the CLI and sync API start faster without it

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        from lightrag.utils import always_get_an_event_loop

        return always_get_an_event_loop().run_until_complete(coroutine)
    coroutine.close()
    example = f"`await ....{twin}(...)`" if twin else "for example `await backup.acreate_snapshot()`"
    raise InvalidInputError(
        f"this sync method was called inside a running event loop; await its async twin ({example})"
    )


def on_loop(method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]]) -> Callable[Concatenate[S, P], T]:
    """The sync twin of async ``method`` (named ``a<name>``): the same call, run to its end."""

    @functools.wraps(method)
    def twin(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        return run_sync(getattr(self, method.__name__)(*args, **kwargs), method.__name__)

    _named(twin, method.__name__.removeprefix("a"))
    return twin


def on_thread(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """The async twin of blocking ``method``: the same call on a worker thread."""

    @functools.wraps(method)
    async def twin(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        import asyncio

        return await asyncio.to_thread(getattr(self, method.__name__), *args, **kwargs)

    _named(twin, "a" + method.__name__)
    twin.__doc__ = f"Async twin of :meth:`{method.__name__}`."
    return twin


def engine_twins(
    prepare: Callable[Concatenate[S, P], Prepared[T]],
) -> tuple[Callable[Concatenate[S, P], T], Callable[Concatenate[S, P], Coroutine[Any, Any, T]]]:
    """Both twins of a method that ``prepare`` describes: it returns the engine operation
    (``_native.Operation``) and what turns the operation's JSON result into the method's
    value. Named after ``prepare`` without its leading underscore (``_list_snapshots`` gives
    ``list_snapshots`` and ``alist_snapshots``)."""
    name = prepare.__name__.lstrip("_")

    @functools.wraps(prepare)
    def sync(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        op, finish = prepare(self, *args, **kwargs)
        return finish(op.run())

    @functools.wraps(prepare)
    async def asynchronous(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        op, finish = prepare(self, *args, **kwargs)
        return finish(await op.start())

    _named(sync, name)
    _named(asynchronous, "a" + name)
    asynchronous.__doc__ = f"Async twin of :meth:`{name}`."
    # What the twins return is what ``prepare``'s Prepared[...] names.
    signature = inspect.signature(prepare)
    returns = signature.return_annotation
    if isinstance(returns, str) and returns.startswith("Prepared[") and returns.endswith("]"):
        returns = returns[len("Prepared["):-1]
    sync.__signature__ = asynchronous.__signature__ = signature.replace(  # type: ignore[attr-defined]
        return_annotation=returns)
    return sync, asynchronous


def _named(function: Callable[..., Any], name: str) -> None:
    function.__name__ = name
    function.__qualname__ = function.__qualname__.rsplit(".", 1)[0] + "." + name if "." in function.__qualname__ \
        else name


__all__ = ["Prepared", "engine_twins", "on_loop", "on_thread", "run_sync"]
