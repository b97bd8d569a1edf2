"""The `batch:` section of tollway.yaml: where batch files live, the input limits, and how hard the
executor may push upstreams while interactive traffic shares them."""

from __future__ import annotations

from pydantic import Field

from tollway.core.config_base import Strict as _Strict


class BatchSettings(_Strict):
    enabled: bool = Field(True, description="serve /v1/files and /v1/batches and run batches in this process")
    files_dir: str | None = Field(None, description="keep batch files in this directory (default: in the "
                                  "ledger's database, SQLite or PostgreSQL)")
    max_file_bytes: int = Field(4 * 1024 * 1024, gt=0, description="largest input file accepted (server."
                                "max_body_bytes caps an upload too)")
    max_lines: int = Field(50_000, gt=0, description="most requests in one batch file")
    max_window_h: int = Field(168, ge=1, description="longest completion_window accepted, in hours")
    concurrency: int = Field(4, ge=1, description="lines of batches in flight at once per replica: "
                             "interactive traffic keeps the rest of each upstream's capacity")
    max_batches: int = Field(4, ge=1, description="batches one replica runs at once (others wait for it or "
                             "for another replica)")
    selfhost_max_waiting: int = Field(0, ge=0, description="a self-hosted deployment takes batch lines only "
                                      "while its scraped queue holds at most this many waiting requests")
    line_estimate_s: float = Field(30.0, gt=0, description="time one line is assumed to take when checking "
                                   "that a batch fits its completion window")
    expected_output_tokens: int = Field(256, ge=1, description="completion tokens assumed per line for the "
                                        "expected cost when a line sets no max_tokens (the worst case uses "
                                        "the model's max output)")
    lease_s: float = Field(30.0, ge=1, description="a replica's claim on a batch lapses this long after its "
                           "last renewal (another replica then resumes it)")
    poll_s: float = Field(1.0, gt=0, description="how often the executor looks for work and due lines")
