"""A small dependency graph: cycle detection and parallel topological traversal.

Each node provides and consumes ids; a node depends on every node that provides what it consumes.
Cycles are reported as Backstage reports them: the values along the cycle, the first repeated last.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["DependencyGraph", "Node"]

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Node(Generic[T]):
    """One node of the graph: its value and the ids it provides and consumes."""

    value: T
    provides: tuple[Hashable, ...]
    consumes: tuple[Hashable, ...]


class DependencyGraph(Generic[T]):
    """Nodes in insertion order, each with the ids it provides and consumes."""

    def __init__(self, nodes: Iterable[tuple[T, Iterable[Hashable], Iterable[Hashable]]]) -> None:
        self.nodes = [
            Node(value, tuple(dict.fromkeys(p)), tuple(dict.fromkeys(c))) for value, p, c in nodes
        ]
        self._provided_by: dict[Hashable, list[Node[T]]] = {}
        for node in self.nodes:
            for provided in node.provides:
                self._provided_by.setdefault(provided, []).append(node)

    def _providers(self, consumed: Hashable) -> list[Node[T]]:
        return self._provided_by.get(consumed, [])

    def detect_circular_dependencies(self) -> Iterator[list[T]]:
        """Yield each distinct cycle once, as its values with the starting one repeated last."""
        seen: set[str] = set()
        index_of = {id(node): i for i, node in enumerate(self.nodes)}
        for start in self.nodes:
            visited: set[int] = set()
            stack: list[tuple[Node[T], list[Node[T]]]] = [(start, [start])]
            while stack:
                node, path = stack.pop()
                if id(node) in visited:
                    continue
                visited.add(id(node))
                for consumed in node.consumes:
                    for provider in self._providers(consumed):
                        if provider is start:
                            key = ",".join(sorted(str(index_of[id(n)]) for n in path))
                            if key not in seen:
                                seen.add(key)
                                yield [n.value for n in path] + [start.value]
                            break
                        if id(provider) not in visited:
                            stack.append((provider, [*path, provider]))

    def detect_circular_dependency(self) -> list[T] | None:
        return next(self.detect_circular_dependencies(), None)

    async def parallel_topological_traversal(self, fn: Callable[[T], Awaitable[None]]) -> None:
        """Run ``fn`` on each node, concurrently, once every provider of what it consumes ran."""
        all_provided = {p for node in self.nodes for p in node.provides}
        produced: set[Hashable] = set()
        waiting = list(self.nodes)
        running: dict[asyncio.Task[None], Node[T]] = {}

        def ready(node: Node[T]) -> bool:
            return all(c in produced or c not in all_provided for c in node.consumes)

        while waiting or running:
            for node in [n for n in waiting if ready(n)]:
                waiting.remove(node)
                running[asyncio.ensure_future(fn(node.value))] = node
            if not running:
                raise RuntimeError("Circular dependency detected")
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                node = running.pop(task)
                task.result()
                produced.update(node.provides)
