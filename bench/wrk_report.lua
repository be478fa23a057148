-- wrk script for bench/proxy_bench.py: after the run, one line that the harness parses.
-- Latencies are in microseconds; the error counters are wrk's own (socket errors and non-2xx/3xx).
done = function(summary, latency, requests)
  local errors = summary.errors
  local seconds = summary.duration / 1000000
  io.write(("BENCH requests=%d duration_us=%d rps=%.2f mean_us=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d"
    .. " err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n"):format(
    summary.requests, summary.duration, summary.requests / seconds, latency.mean,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
