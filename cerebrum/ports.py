"""Where each process of a distributed run listens: every port derives from one base port.

Two runs on one machine (a chaos run beside ``cerebrum up --distributed``, a benchmark beside a
test) then only need different base ports. Without one, the addresses the settings default to
stay: the gateway on 8000, the services on 8101-8107.
"""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass
from pathlib import Path

from cerebrum.registry import DEFAULT_BASE_PORT, SERVICES

DEFAULT_GATEWAY_PORT = 8000
MONOLITH_OFFSET = 8
POSTGRES_EXPORTER_OFFSET = 9
SPAN = 10
"""Ports a run takes from its base: the gateway (with --base-port), seven services, monolith, exporter."""
HIGHEST_BASE_PORT = 65535 - SPAN + 1


@dataclass(frozen=True)
class Ports:
    base: int = DEFAULT_BASE_PORT
    gateway: int = DEFAULT_GATEWAY_PORT
    monolith_port: int | None = None
    """Where ``--monolith-port`` puts the monolith instead of the base port +8."""

    @classmethod
    def layout(cls, base: int | None = None, *, gateway: int | None = None) -> Ports:
        """The ports of a run from ``--base-port`` (the gateway on the base itself) and ``--port``."""
        if base is None:
            return cls(gateway=gateway or DEFAULT_GATEWAY_PORT)
        if not 1 <= base <= HIGHEST_BASE_PORT:
            raise ValueError(f"a base port leaves room for {SPAN} ports: 1 to {HIGHEST_BASE_PORT}, not {base}")
        return cls(base, gateway or base)

    def service(self, name: str) -> int:
        return self.base + SERVICES[name].offset

    @property
    def services(self) -> dict[str, int]:
        return {name: self.service(name) for name in SERVICES}

    @property
    def monolith(self) -> int:
        return self.monolith_port or self.base + MONOLITH_OFFSET

    @property
    def postgres_exporter(self) -> int:
        return self.base + POSTGRES_EXPORTER_OFFSET


def in_use(ports: list[int], host: str = "127.0.0.1") -> list[int]:
    """The ports something already listens on (another run, most likely).

    Probed as the servers bind, with SO_REUSEADDR: a port whose last run's connections linger in
    TIME_WAIT for a minute is free to serve on, and only a listening socket refuses the bind.
    """
    taken = []
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                taken.append(port)
    return taken


def free_base_port(attempts: int = 100) -> int:
    """A base port whose whole span is free now: for runs started beside others (chaos, bench, tests).

    Drawn below the kernel's ephemeral range: a port in it can be taken at any moment by some
    process's outgoing connection, between this check and the run binding it.
    """
    low = _ephemeral_low()
    for _ in range(attempts):
        base = random.randrange(10000, max(10001, low - SPAN))
        if not in_use(list(range(base, base + SPAN))):
            return base
    raise RuntimeError(f"no run of {SPAN} free ports found in {attempts} attempts")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default
