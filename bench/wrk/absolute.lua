-- Sends proxy requests in absolute form: wrk connects to the host in its URL
-- argument (the proxy, or the origin for the direct baseline) and sends
-- TARGET as the request-target. Prints one JSON line of results at the end.
local target = os.getenv("TARGET")
if target then
  wrk.path = target
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"requests":%d,"errors":%d}\n',
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, errors))
end
