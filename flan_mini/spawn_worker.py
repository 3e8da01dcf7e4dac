"""The loop of a spawn_pool worker: pickled (function, arguments) in on stdin, pickled (status, value) out."""

from __future__ import annotations

import os
import pickle
import sys
import traceback


def main() -> None:
    # The protocol gets a private copy of stdout; fd 1 then points at stderr, so prints cannot corrupt it.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    while True:
        try:
            fn, args = pickle.load(requests)
        except EOFError:
            return
        try:
            answer = ("ok", fn(*args))
        except BaseException as exc:  # handed to the caller, which raises it
            if hasattr(exc, "add_note"):
                exc.add_note("in a flan-mini worker process:\n" + "".join(traceback.format_tb(exc.__traceback__)))
            answer = ("error", _picklable(exc))
        pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return RuntimeError(f"in a worker process: {text}")


if __name__ == "__main__":
    main()
