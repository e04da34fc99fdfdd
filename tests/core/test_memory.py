import subprocess
import sys

import pytest

# A child process allocates, touches and frees a 64 MB block twice and prints the page faults
# the second round cost; with the memory kept, the second round reuses the first's pages.
CHILD = """
import resource, sys
import numpy as np
from dualctl.memory import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else True
block = np.ones(1 << 23); del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = np.ones(1 << 23); del block
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def second_round_faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_kept_memory_is_reused_without_page_faults():
    applied, kept = second_round_faults("keep")
    _, default = second_round_faults("default")
    assert applied
    assert default >= 32  # 64 MB faulted in again: one fault per page, 2 MB pages at most
    assert kept * 10 < default
