-- wrk script for bench/pages_bench.py: one request shape per run, given as arguments
--   wrk ... -s wrk_form.lua URL -- METHOD PATH COOKIE CSRF BODY
-- COOKIE is the session cookie of a logged-in teller ("" for the bare app), CSRF its token
-- (sent as X-CSRF-Token, as htmx does), BODY an urlencoded form for POST.
-- done() prints one line: JSON {"requests":…,"rps":…,"p50_ms":…,"p99_ms":…,"errors":…}.
local method, path, headers, body

function init(args)
  method, path = args[1], args[2]
  headers = {}
  if args[3] ~= nil and args[3] ~= "" then headers["Cookie"] = args[3] end
  if args[4] ~= nil and args[4] ~= "" then headers["X-CSRF-Token"] = args[4] end
  if method == "POST" then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    body = args[5]
  end
end

function request()
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests":%d,"rps":%.2f,"p50_ms":%.3f,"p99_ms":%.3f,"errors":%d}\n',
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.status + e.timeout))
end
