"""A UDP forwarder between browsers and coturn whose path a test can cut and restore.

Each client address gets its own upstream socket to the TURN server, so coturn sees one
client per browser socket, as it would through a NAT. ``cut()`` drops every datagram in
both directions until ``restore()``: for the call, the network path is gone (and with
``restore(rebind=True)`` it comes back as a different path)."""

from __future__ import annotations

import selectors
import socket
import threading


class UdpCut:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self.listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.listen.bind((host, 0))
        self.port = int(self.listen.getsockname()[1])
        self.up: dict[tuple[str, int], socket.socket] = {}
        self.down: dict[socket.socket, tuple[str, int]] = {}
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listen, selectors.EVENT_READ)
        self.open = threading.Event()
        self.open.set()
        self.stopping = False
        self.dropped = 0
        self.rebind = False
        self.thread = threading.Thread(target=self._run, name="udp-cut", daemon=True)

    def start(self) -> UdpCut:
        self.thread.start()
        return self

    def cut(self) -> None:
        self.open.clear()

    def restore(self, rebind: bool = False) -> None:
        """Let datagrams through again. ``rebind``: through new upstream sockets, so the
        TURN server sees new client addresses (a NAT rebinding or another network: the
        old allocations are unreachable and only an ICE restart brings the call back)."""
        if rebind:
            self.rebind = True
        self.open.set()

    def _upstream(self, client: tuple[str, int]) -> socket.socket:
        s = self.up.get(client)
        if s is None:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((self.target[0], 0))
            s.connect(self.target)
            self.up[client], self.down[s] = s, client
            self.sel.register(s, selectors.EVENT_READ)
        return s

    def _run(self) -> None:
        while not self.stopping:
            if self.rebind:
                for up in self.up.values():
                    self.sel.unregister(up)
                    up.close()
                self.up.clear()
                self.down.clear()
                self.rebind = False
            for key, _ in self.sel.select(0.2):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data, addr = sock.recvfrom(65536)
                except OSError:
                    continue
                if not self.open.is_set():
                    self.dropped += 1
                    continue
                try:
                    if sock is self.listen:
                        self._upstream(addr).send(data)
                    else:
                        self.listen.sendto(data, self.down[sock])
                except OSError:
                    pass

    def stop(self) -> None:
        self.stopping = True
        self.thread.join(5)
        for s in [self.listen, *self.up.values()]:
            s.close()
        self.sel.close()
