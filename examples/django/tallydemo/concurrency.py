"""Running a story's step from many threads at once, as concurrent requests would."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from django.db import connection

T = TypeVar("T")
R = TypeVar("R")


def concurrently(work: Callable[[T], R], items: Sequence[T]) -> list[R | None]:
    """Runs ``work`` on every item, each in a thread of its own, all released together by a
    barrier; returns the results in order. An exception in any thread fails the caller, and
    each thread closes its own database connection."""
    start, results, errors = threading.Barrier(len(items)), [None] * len(items), []

    def run(index: int) -> None:
        try:
            start.wait()
            results[index] = work(items[index])
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(items))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return list(results)
