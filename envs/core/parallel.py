"""One map over independent work units: in-process, on a local Ray instance, or on a Ray cluster.

Dataset synthesis, grasp validation and evaluation sweeps all split into units (an object, an episode) whose
results do not depend on each other or on the order they finish in; each unit carries its own seed. Ray runs
each unit as a task retried on failure (a worker that dies is replaced), so a long job survives flaky machines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from manipstack.errors import InputError

Item = TypeVar("Item")
Result = TypeVar("Result")


def parallel_map(
    fn: Callable[[Item], Result],
    items: Sequence[Item],
    workers: int = 1,
    ray_address: str | None = None,
    retries: int = 2,
    describe: Callable[[Item], str] = repr,
    ray_init: dict[str, Any] | None = None,
) -> Iterator[tuple[int, Result | Exception]]:
    """Yield ``(index, fn(items[index]))`` for every item, in the order the units finish.

    Args:
        fn: the unit of work; must be picklable (a module-level function or a ``functools.partial`` of one)
            when it runs on Ray.
        items: the units' inputs.
        workers: 1 runs in-process, in order (an exception propagates, with its traceback); more start a local
            Ray instance with that many CPUs, one unit per CPU.
        ray_address: a running Ray cluster (``"auto"``, ``"ray://host:10001"``) instead of a local instance.
        retries: times Ray retries a failed unit; a unit that fails every time is yielded as a
            ``RuntimeError`` naming it (``describe(item)``), so one bad unit does not end the job.
        describe: names a unit in error messages.
        ray_init: extra keyword arguments of ``ray.init`` (e.g. ``runtime_env``).
    """
    if workers < 1:
        raise InputError(f"workers must be >= 1, got {workers}")
    if workers == 1 and ray_address is None:
        for index, item in enumerate(items):
            yield index, fn(item)
        return
    import ray  # optional dependency (extra 'ray')

    owns_ray = not ray.is_initialized()  # a caller (e.g. a benchmark) may have started Ray already
    if owns_ray and ray_address is not None:
        ray.init(address=ray_address, log_to_driver=False, **(ray_init or {}))
    elif owns_ray:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, **(ray_init or {}))
    try:
        task = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=True)(_apply)
        fn_ref = ray.put(fn)  # shipped to the object store once, not with every unit
        refs = {task.remote(fn_ref, item): index for index, item in enumerate(items)}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            index = refs.pop(ready[0])
            try:
                yield index, ray.get(ready[0])
            except Exception as err:  # a unit that failed all retries is reported; the others go on
                yield index, RuntimeError(f"{describe(items[index])} failed after {retries} retries: {err}")
    finally:
        if owns_ray:
            ray.shutdown()


def _apply(fn: Callable[[Item], Result], item: Item) -> Result:
    """The Ray task body (Ray needs a plain function; ``fn`` may be a ``functools.partial``)."""
    return fn(item)
