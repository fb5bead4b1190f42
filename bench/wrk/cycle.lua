-- Cycles through NOBJ distinct URLs BASE1 .. BASE<NOBJ> (absolute form), so
-- every request is for a different object of a set of NOBJ.
local n = tonumber(os.getenv("NOBJ"))
local base = os.getenv("BASE")
local i = 0

request = function()
  i = i + 1
  if i > n then i = 1 end
  return wrk.format("GET", base .. i)
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
