"""The stream worker process: ``python -m hush.service.worker FD SPEC_JSON``.

Started by ``scheduler.ProcessWorker`` with one end of a socket pair as file descriptor
``FD``. It loads the models named in the spec, answers ``("ready", names)``, then runs one
``StreamEngine.tick`` per request until the pipe closes (so it never outlives the server).
It is started as a plain module rather than through ``multiprocessing`` so that nothing of
the parent's ``__main__`` is re-imported here.
"""

from __future__ import annotations

import json
import signal
import sys
from multiprocessing.connection import Connection


def main(fd: int, spec: dict) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops us
    import torch
    from hush.models import ModelRegistry
    from hush.service.engine import StreamEngine
    from hush.streaming import Enhancer

    conn = Connection(fd)
    torch.set_num_threads(spec["torch_threads"])
    registry = ModelRegistry(extra_dirs=spec["models_dir"], include_shipped=spec["include_shipped"])
    enhancers = {}
    for name in spec["models"]:
        model, _meta = registry.load(name)
        enhancers[name] = Enhancer(model, name)
    engine = StreamEngine(enhancers)
    conn.send(("ready", sorted(enhancers)))
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        conn.send(engine.tick(batch))


if __name__ == "__main__":
    main(int(sys.argv[1]), json.loads(sys.argv[2]))
