"""The planner in its own process, so heavy torch work never takes the control loop's GIL or
core, and the clients the scheduler asks for plans.

The child is started with multiprocessing's ``spawn`` and builds its planner from a factory named
by a string (``"package.module:function"`` or ``"/path/to/file.py:function"``) with JSON-able
keyword arguments, so no object is pickled. Observations go in and plans come back as arrays in
shared memory (:mod:`dualctl.runtime.wire`) announced by small JSON messages on a pipe.

The client treats the process as unreliable: an exception inside ``plan`` comes back as an error,
a process that dies (EOF on the pipe) or does not answer within ``timeout_s`` is killed and
restarted after ``restart_s``, and a reply that is not a valid plan is rejected. Meanwhile the
scheduler keeps following the last valid plan, and holds once it is stale.
"""

from __future__ import annotations

import abc
import asyncio
import importlib
import importlib.util
import json
import logging
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from dualctl.errors import DualctlError
from dualctl.planner.base import Planner
from dualctl.runtime.clock import Clock
from dualctl.runtime.plan_buffer import validate_plan
from dualctl.runtime.wire import SharedBlock, WireError, read_arrays, write_arrays
from dualctl.types import Observation, Plan

log = logging.getLogger(__name__)


class PlannerProcessError(DualctlError):
    """The planner process could not be started or built its planner wrongly."""


@dataclass(frozen=True)
class PlannerSpec:
    """How the child process builds its planner.

    Attributes:
        factory: ``"package.module:function"`` or ``"/path/to/file.py:function"`` returning a
            :class:`~dualctl.planner.base.Planner`.
        kwargs: JSON-able keyword arguments for the factory.
        threads: torch/OpenMP threads the child may use.
    """

    factory: str
    kwargs: dict = field(default_factory=dict)
    threads: int = 1


@dataclass
class PlanResult:
    """What one request to the planner produced.

    Attributes:
        plan: the plan, or None when it failed (see ``error``).
        requested_at: s, when the request was sent.
        arrived_at: s, when the plan (or the failure) was known.
        compute_s: the planner's own compute time, s (wall clock), NaN if unknown.
        error: why there is no plan ("crashed", "hung", "garbage: ...", "error: ...").
    """

    plan: Plan | None
    requested_at: float
    arrived_at: float
    compute_s: float = float("nan")
    error: str | None = None


class PlanClient(abc.ABC):
    """Where the scheduler gets plans from. One request at a time."""

    async def start(self) -> None:
        """Get ready (e.g. start a process and wait until its planner is loaded)."""
        return None  # optional hook

    async def prepare(self) -> None:
        """Called before each request, before the observation is chosen: recover from a
        failure here (a restart takes time, and the request should carry a fresh observation)."""
        return None  # optional hook

    @abc.abstractmethod
    async def plan(self, observation: Observation, instruction: str) -> PlanResult:
        """A plan conditioned on ``observation``; never raises for planner faults."""

    async def close(self) -> None:
        """Release resources. Safe to call twice."""
        return None  # optional hook


class InProcessPlanClient(PlanClient):
    """Calls a planner directly, with a simulated latency (s). Blocks the event loop while the
    planner computes, so it suits the virtual clock (oracle plans, tests), not real time."""

    def __init__(self, planner: Planner, clock: Clock, latency_s: float = 0.0):
        self.planner, self.clock, self.latency_s = planner, clock, latency_s

    async def plan(self, observation: Observation, instruction: str) -> PlanResult:
        requested_at = self.clock.now()
        start = time.perf_counter()
        try:
            plan = self.planner.plan(observation, instruction)
        except Exception as error:  # a planner fault must not stop the control loop
            log.exception("planner raised")
            return PlanResult(None, requested_at, self.clock.now(), error=f"error: {error!r}")
        compute_s = time.perf_counter() - start
        await self.clock.sleep_until(requested_at + self.latency_s)
        problem = validate_plan(plan, observation)
        result = PlanResult(plan, requested_at, self.clock.now(), compute_s)
        if problem:
            result.plan, result.error = None, f"garbage: {problem}"
        return result


# --- the child process --------------------------------------------------------------------------


def load_factory(factory: str):
    """The callable ``factory`` names (``module:function`` or ``file.py:function``)."""
    target, sep, name = factory.rpartition(":")
    if not sep or not target or not name:
        raise PlannerProcessError(
            f"planner factory {factory!r}: expected 'package.module:function' or "
            "'/path/to/file.py:function'"
        )
    if target.endswith(".py"):
        path = Path(target)
        spec = importlib.util.spec_from_file_location(f"_planner_factory_{path.stem}", path)
        if spec is None or not path.is_file():
            raise PlannerProcessError(f"planner factory file {target!r} does not exist")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    function = getattr(module, name, None)
    if function is None:
        raise PlannerProcessError(f"planner factory {factory!r}: {target} has no {name!r}")
    return function


def _child_main(conn, spec_json: str, request_names: list, reply_names: list) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    _yield_to_the_control_loop()
    spec = json.loads(spec_json)
    threads = str(spec["threads"])
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = threads
    requests = [SharedBlock(name=name) for name in request_names]
    replies = [SharedBlock(name=name) for name in reply_names]
    try:
        planner = load_factory(spec["factory"])(**spec["kwargs"])
        _limit_torch_threads(spec["threads"])
        conn.send_bytes(json.dumps({"type": "ready", "pid": os.getpid()}).encode())
        _serve(conn, planner, requests, replies)
    finally:
        for block in requests + replies:
            block.close()


def _yield_to_the_control_loop() -> None:
    """Run below the control process: normal (not real-time) scheduling, inherited from a
    real-time parent otherwise, and a lower priority, so that when the cores are contended the
    kernel preempts the planner, not the control loop."""
    if hasattr(os, "sched_setscheduler"):
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError as error:
            log.debug("could not reset the planner's scheduling policy: %s", error)
    os.nice(10)


def _limit_torch_threads(threads: int) -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def _serve(conn, planner: Planner, requests: list, replies: list) -> None:
    """Answer requests in order; each names the slot (shared-memory pair) it uses."""
    while True:
        try:
            message = json.loads(conn.recv_bytes())
        except EOFError:
            return
        if message["type"] == "stop":
            return
        seq, slot = message["seq"], message["slot"]
        start = time.perf_counter()
        try:
            arrays = read_arrays(requests[slot].view, message["layout"])
            plan = planner.plan(Observation.from_arrays(arrays), message["instruction"])
            layout = write_arrays(replies[slot].view, plan.to_arrays())
        except Exception as error:  # reported to the parent, which decides what to do
            answer = {"type": "error", "seq": seq, "slot": slot, "message": repr(error)}
        else:
            compute_s = time.perf_counter() - start
            answer = {"type": "plan", "seq": seq, "slot": slot, "layout": layout,
                      "compute_s": compute_s}  # fmt: skip
        conn.send_bytes(json.dumps(answer).encode())


# --- the parent side ----------------------------------------------------------------------------


class PlannerProcess:
    """One child process running a planner, with its pipe and ``slots`` pairs of shared-memory
    blocks (request, reply), one pair per request in flight."""

    def __init__(self, spec: PlannerSpec, shm_bytes: int, slots: int = 1):
        self.spec = spec
        self._context = multiprocessing.get_context("spawn")
        self.requests = [SharedBlock(shm_bytes) for _ in range(slots)]
        self.replies = [SharedBlock(shm_bytes) for _ in range(slots)]
        self._process = None
        self._conn = None

    def start(self) -> None:
        """Spawn the child (it then loads its planner and sends "ready")."""
        parent, child = self._context.Pipe(duplex=True)
        spec_json = json.dumps(
            {"factory": self.spec.factory, "kwargs": self.spec.kwargs, "threads": self.spec.threads}
        )
        self._process = self._context.Process(
            target=_child_main,
            args=(
                child,
                spec_json,
                [b.name for b in self.requests],
                [b.name for b in self.replies],
            ),
            name="dualctl-planner",
            daemon=True,
        )
        self._process.start()
        child.close()
        self._conn = parent

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def is_alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def fileno(self) -> int:
        return self._conn.fileno()

    def send_request(self, observation: Observation, instruction: str, seq: int, slot: int):
        if self._conn is None:
            raise BrokenPipeError("planner process not running")
        layout = write_arrays(self.requests[slot].view, observation.to_arrays())
        message = {"type": "plan", "seq": seq, "slot": slot, "instruction": instruction,
                   "layout": layout}  # fmt: skip
        self._conn.send_bytes(json.dumps(message).encode())

    def poll(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` (s, wall clock) for a message; True when one is ready
        (or the pipe is closed, which the next :meth:`receive` reports as EOFError)."""
        return self._conn is not None and self._conn.poll(timeout_s)

    def receive(self) -> dict:
        """The next message; raises EOFError when the child is gone."""
        if self._conn is None:
            raise EOFError("planner process not running")
        return json.loads(self._conn.recv_bytes())

    def read_plan(self, message: dict) -> Plan:
        slot = message["slot"]
        if not (isinstance(slot, int) and 0 <= slot < len(self.replies)):
            raise WireError(f"reply names slot {slot!r}, not one of ours")
        return Plan.from_arrays(read_arrays(self.replies[slot].view, message["layout"]))

    def kill(self) -> None:
        """Stop the child at once (SIGKILL) and drop the pipe."""
        if self._process is not None and self._process.pid is not None:  # started
            self._process.kill()
            self._process.join(timeout=5.0)
            self._process = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        """Ask the child to exit, then make sure it has."""
        if self._conn is not None and self.is_alive():
            try:
                self._conn.send_bytes(b'{"type": "stop"}')
                self._process.join(timeout=2.0)
            except (BrokenPipeError, ConnectionError, OSError):
                log.debug("planner process already gone at stop")
        self.kill()

    def close(self) -> None:
        self.stop()
        for block in self.requests + self.replies:
            block.close()


class ProcessPlanClient(PlanClient):
    """Plans from a :class:`PlannerProcess`, with fault handling, pipelining and both clocks.

    Up to ``max_in_flight`` requests may be outstanding (the child answers them in order), so
    with a latency longer than the replan period plans still arrive at the replan rate.

    Real clock: a reader task takes replies off the pipe as they come; a plan's latency is what
    it really took (plus ``injected_delay_s``). Virtual clock: a plan arrives ``latency_s``
    after its request ("fixed") or after the planner's measured compute time ("measured"); at
    that moment the client blocks the (virtual) loop until the real process has answered, which
    costs no virtual time, so runs stay deterministic while the process computes in parallel.

    Args:
        spec: how the child builds its planner.
        clock: the runtime clock (assign a new one between runs if needed).
        latency_s: virtual clock: simulated latency, s; real clock: ignored.
        latency_mode: "fixed" or "measured" (virtual clock).
        injected_delay_s: real clock: extra delay added to every plan's arrival, s.
        timeout_s: no answer this long (s) after a request means hung: kill and restart.
        virtual_patience_s: virtual clock: how long (s, wall clock) to wait for an answer
            before calling the process hung (then ``timeout_s`` of virtual time pass). Plans
            cost no virtual time there, so this only has to catch a dead process; it is long so
            that a loaded machine cannot turn a slow plan into "hung" and change the run.
        restart_s: wait before a restart, s.
        startup_timeout_s: how long (s, wall clock) loading the planner may take.
        shm_bytes: size of each shared-memory block, bytes.
        max_in_flight: requests that may be outstanding at once.
    """

    def __init__(
        self,
        spec: PlannerSpec,
        clock: Clock,
        *,
        latency_s: float = 0.3,
        latency_mode: str = "fixed",
        injected_delay_s: float = 0.0,
        timeout_s: float = 5.0,
        virtual_patience_s: float = 60.0,
        restart_s: float = 0.5,
        startup_timeout_s: float = 300.0,
        shm_bytes: int = 8 << 20,
        max_in_flight: int = 3,
    ):
        self.clock = clock
        self.latency_s, self.latency_mode = latency_s, latency_mode
        self.injected_delay_s = injected_delay_s
        self.timeout_s, self.restart_s = timeout_s, restart_s
        self.virtual_patience_s = max(virtual_patience_s, timeout_s)
        self.startup_timeout_s = startup_timeout_s
        self.max_in_flight = max_in_flight
        self.process = PlannerProcess(spec, shm_bytes, slots=max_in_flight)
        self.restarts = 0
        self._seq = 0
        self._free_slots = list(range(max_in_flight))
        self._ready = False
        #: Counts processes: a request's fault only restarts the process it was sent to.
        self._generation = 0
        #: Replies taken off the pipe, by request number, not yet claimed by their request.
        self._mail: dict[int, dict] = {}
        #: Real clock: one future per request waiting for its reply; the reader task fills them.
        self._waiting: dict[int, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self.process.start()
        await self._await_ready()
        if not self.clock.is_virtual:
            self._reader = asyncio.create_task(self._read_replies(), name="planner-replies")

    async def _await_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        if await self._wait_readable(max(0.0, deadline - time.monotonic())):
            try:
                message = self.process.receive()
            except EOFError:
                message = {"type": "died"}
            if message.get("type") == "ready":
                self._ready = True
                log.info("planner process %s ready", self.process.pid)
                return
            raise PlannerProcessError(
                f"planner process failed while loading {self.process.spec.factory!r} "
                "(see its traceback above); check the factory and its arguments"
            )
        raise PlannerProcessError(
            f"planner process did not load {self.process.spec.factory!r} within "
            f"{self.startup_timeout_s} s"
        )

    async def _wait_readable(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` wall-clock seconds for the pipe to become readable."""
        if self.clock.is_virtual:
            return self.process.poll(timeout_s)
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        fd = self.process.fileno()
        loop.add_reader(fd, lambda: readable.done() or readable.set_result(True))
        try:
            return await asyncio.wait_for(readable, timeout_s)
        except TimeoutError:
            return False
        finally:
            loop.remove_reader(fd)

    async def prepare(self) -> None:
        if self._ready:
            return
        try:
            await self._restart()
        except PlannerProcessError as error:
            log.error("planner restart failed (will retry): %s", error)
            self.process.kill()

    async def _restart(self) -> None:
        await self.clock.sleep_until(self.clock.now() + self.restart_s)
        self.restarts += 1
        await self._stop_reader()
        self.process.kill()
        self._mail.clear()
        await self.start()

    async def close(self) -> None:
        await self._stop_reader()
        self.process.close()

    async def _stop_reader(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        self._fail_waiting()

    def _fail_waiting(self) -> None:
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_result("crashed")
        self._waiting.clear()

    # --- requests -------------------------------------------------------------------------------

    async def plan(self, observation: Observation, instruction: str) -> PlanResult:
        await self.prepare()
        now = self.clock.now()
        if not self._ready:
            return PlanResult(None, now, now, error="restart failed")
        if not self._free_slots:
            return PlanResult(None, now, now, error=f"busy: {self.max_in_flight} in flight")
        slot = self._free_slots.pop()
        try:
            return await self._request(observation, instruction, slot)
        finally:
            self._free_slots.append(slot)

    async def _request(self, observation: Observation, instruction: str, slot: int):
        self._seq += 1
        seq, requested_at, generation = self._seq, self.clock.now(), self._generation
        try:
            self.process.send_request(observation, instruction, seq, slot)
        except (BrokenPipeError, ConnectionError, OSError):
            return self._failed(requested_at, "crashed", generation)
        except WireError as error:
            return PlanResult(None, requested_at, self.clock.now(), error=f"error: {error}")
        if self.clock.is_virtual:
            if self.latency_mode == "fixed":
                await self.clock.sleep_until(requested_at + self.latency_s)
            message = await self._collect_virtual(seq, requested_at, generation)
        else:
            message = await self._collect_real(seq, requested_at)
        if isinstance(message, str):
            return self._failed(requested_at, message, generation)
        return await self._finish(message, observation, requested_at)

    async def _collect_virtual(self, seq: int, requested_at: float, generation: int):
        """Block (costing no virtual time) until request ``seq``'s reply is off the pipe."""
        while seq not in self._mail:
            if generation != self._generation:
                return "crashed"  # its process was killed while it waited
            if not self.process.poll(self.virtual_patience_s):
                await self.clock.sleep_until(requested_at + self.timeout_s)
                return "hung"
            try:
                message = self.process.receive()
            except (EOFError, OSError):
                return "crashed"
            self._mail[message.get("seq")] = message
        return self._mail.pop(seq)

    async def _collect_real(self, seq: int, requested_at: float) -> dict | str:
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[seq] = waiter
        remaining = requested_at + self.timeout_s - self.clock.now()
        try:
            return await asyncio.wait_for(waiter, max(0.0, remaining))
        except TimeoutError:
            return "hung"
        finally:
            self._waiting.pop(seq, None)

    async def _read_replies(self) -> None:
        """Real clock: hand each reply to the request waiting for it."""
        while True:
            if not await self._wait_readable(3600.0):
                continue
            try:
                message = self.process.receive()
            except (EOFError, OSError):
                self._fail_waiting()
                return
            waiter = self._waiting.get(message.get("seq"))
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
            else:
                log.warning("dropping a reply nobody waits for (request %s)", message.get("seq"))

    async def _finish(self, message: dict, observation: Observation, requested_at: float):
        compute_s = float(message.get("compute_s", float("nan")))
        if self.clock.is_virtual and self.latency_mode == "measured":
            await self.clock.sleep_until(requested_at + compute_s)
        result = PlanResult(None, requested_at, self.clock.now(), compute_s)
        if message.get("type") == "error":
            result.error = f"error: {message.get('message')}"
            return result
        try:
            plan = self.process.read_plan(message)
        except (WireError, ValueError, KeyError, TypeError) as error:
            result.error = f"garbage: {error}"
            return result
        if not self.clock.is_virtual and self.injected_delay_s > 0:
            await self.clock.sleep_until(self.clock.now() + self.injected_delay_s)
            result.arrived_at = self.clock.now()
        problem = validate_plan(plan, observation)
        if problem:
            result.error = f"garbage: {problem}"
        else:
            result.plan = plan
        return result

    def _failed(self, requested_at: float, reason: str, generation: int) -> PlanResult:
        if generation == self._generation:
            log.warning("planner process %s %s; restarting in %.2f s", self.process.pid, reason,
                        self.restart_s)  # fmt: skip
            self._ready = False
            self._generation += 1
            if self._reader is not None:
                self._reader.cancel()  # it unregisters the pipe before the pipe is closed
                self._reader = None
            self._fail_waiting()
            self.process.kill()
        return PlanResult(None, requested_at, self.clock.now(), error=reason)
