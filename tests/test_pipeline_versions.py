"""The newest update time on a page (the lower bound the catch-up query starts from) is read in
either time format and sent back in the format of the endpoint's window
(docs/api-contract.md#57-1688-orders)."""

from __future__ import annotations

from xport_etl.extract.endpoints import ENDPOINTS
from xport_etl.run.paging import pass_start


def test_pass_start_reads_either_format_and_answers_in_the_window_format():
    spec = ENDPOINTS["alibaba_orders"].windows["update"]  # the cursor's window
    stamps = [
        "2026-03-01 08:00:00",
        "20260301090000000+0800",
        None,
        "",
        "junk",
        7,
        "20260301020000000+0000",
    ]  # 10:00 CST, the newest
    assert pass_start(stamps, spec) == "2026-03-01 10:00:00"
    assert pass_start(["2026-03-01 08:00:00", "2026-02-28 23:00:00"], spec) == "2026-03-01 08:00:00"
    assert pass_start([None, "junk"], spec) is None
    assert pass_start([], ENDPOINTS["taobao_orders"].windows["update"]) is None
