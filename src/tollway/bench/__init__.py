"""`tollway bench`: a load benchmark whose figures a capacity planner can trust.

Why a package of its own: existing LLM benchmarks disagree because they define TPOT and ITL differently,
count SSE chunks as tokens, send lockstep batches, drop failed requests and time open-loop latency from the
actual send. Every module here settles one of those questions, and docs/bench.md defines each metric.

Entry points for other code:
- `tollway.bench.report_json.read_capacity(path)` reads the measured capacity `tollway plan` needs.
- `tollway.bench.runner.run_benchmark(config)` runs a benchmark in process and returns its results.
"""
