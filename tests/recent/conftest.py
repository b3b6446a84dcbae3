import pytest

from recentd.recent import initial_jiffies

#: Clock origins every transcript runs under: zero, just below 2**31, the kernel's
#: boot value (2**32 - 300*HZ, a 32-bit counter wraps 5 minutes later), and a few
#: ticks before 2**32 so the transcript crosses it.
ORIGINS = [0, 2**31 - 10, initial_jiffies(250), 2**32 - 5]


@pytest.fixture(params=ORIGINS, ids=["origin0", "origin2^31-10", "initial_jiffies", "cross2^32"])
def origin(request: pytest.FixtureRequest) -> int:
    return int(request.param)
