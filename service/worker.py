"""The stream worker process: ``python -m hush.service.worker FD SPEC_JSON``.

Started by ``scheduler.ProcessWorker`` with one end of a socket pair as file descriptor
``FD``. It loads the models named in the spec, answers ``("ready", names)``, then runs one
``StreamEngine.tick`` per request until the socket closes (so it never outlives the server).
Messages both ways are pickles with an 8-byte big-endian length prefix. It is started as
a plain module rather than through ``multiprocessing`` so that nothing of the parent's
``__main__`` is re-imported here.
"""

from __future__ import annotations

import gc
import json
import pickle
import signal
import socket
import struct
import sys
from typing import Any


def _recv_exact(sock: socket.socket, n: int) -> bytearray | None:
    buffer = bytearray(n)
    view = memoryview(buffer)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            return None
        got += k
    return buffer


def _send(sock: socket.socket, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(struct.pack("!Q", len(data)) + data)


def main(fd: int, spec: dict) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops us
    import torch

    from hush.models import ModelRegistry
    from hush.service.engine import StreamEngine
    from hush.streaming import Enhancer

    sock = socket.socket(fileno=fd)
    torch.set_num_threads(spec["torch_threads"])
    registry = ModelRegistry(extra_dirs=spec["models_dir"], include_shipped=spec["include_shipped"])
    enhancers = {}
    for name in spec["models"]:
        model, _meta = registry.load(name)
        enhancers[name] = Enhancer(model, name, precision=spec["precision"])
    engine = StreamEngine(enhancers)
    engine.warm_up()
    # As in the server: keep full collections from walking torch's and the models' objects
    # in the middle of a tick.
    gc.collect()
    gc.freeze()
    _send(sock, ("ready", sorted(enhancers)))
    while True:
        try:
            header = _recv_exact(sock, 8)
            if header is None:
                return
            body = _recv_exact(sock, struct.unpack("!Q", header)[0])
            if body is None:
                return
        except OSError:
            return
        try:
            _send(sock, engine.tick(pickle.loads(body)))
        except OSError:
            return


if __name__ == "__main__":
    main(int(sys.argv[1]), json.loads(sys.argv[2]))
