"""Run a deploy (or teardown) against a file-backed fake cloud, to be killed with SIGKILL by a test.

usage: engine_crash_child.py STATE_DIR CLOUD_JSON COMMAND HOOK_POINT MARKER
COMMAND is deploy or teardown. At HOOK_POINT ("begin", "poll", "result" on resource A, "rg-poll" on
the container, or "none"), the child writes MARKER and hangs until killed. With "none" it writes
MARKER when the run starts and runs a slower pipeline with real sleeps, to be killed at random.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from engine_fakes import CONFIG, RG, A, FakeCloud, make_runner, pipeline, resource_step, rid

from aks_lockdown.engine.runner import Runner
from aks_lockdown.engine.state import LocalStateStore


def many_steps() -> list:
    return [
        resource_step("rg", RG, container=True, ticks=2),
        *(resource_step(f"s{i}", rid("things", f"t{i}"), ticks=2, uses="rg") for i in range(12)),
    ]


def main() -> None:
    state_dir, cloud_path, command, point, marker = sys.argv[1:6]
    cloud = FakeCloud(Path(cloud_path))

    def hang() -> None:
        Path(marker).write_text(str(time.time()))
        time.sleep(60)

    if point == "none":
        Path(marker).write_text(str(time.time()))
        runner = Runner(
            deployment="demo",
            steps=many_steps(),
            config={},
            clients=cloud,
            store=LocalStateStore(state_dir, "demo"),
            classify=lambda exc: None,
            poll_interval=0.003,
            state_poll_interval=0.003,
        )
    else:
        if point == "rg-poll":
            cloud.hooks[("poll", RG)] = hang
        else:
            cloud.hooks[(point, A)] = hang
        runner = make_runner(Path(state_dir), pipeline(ticks=3), cloud, CONFIG)
    getattr(runner, command)()


if __name__ == "__main__":
    main()
