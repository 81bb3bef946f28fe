-- wrk script of `make bench` (scripts/bench_load.py runs it): every answer that is not 2xx is
-- counted, by status (wrk itself counts only 4xx and 5xx, so a redirect to the sign-in page
-- would pass for a fast page), and done() prints the figures as one JSON line after the marker
-- "BENCH_JSON ". Latencies are in microseconds.

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  non_2xx = 0
  statuses = ""
  status_counts = {}
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
    local key = tostring(status)
    status_counts[key] = (status_counts[key] or 0) + 1
    -- a table cannot be read from another thread's interpreter: keep a string copy for done()
    local parts = {}
    for code, count in pairs(status_counts) do
      table.insert(parts, string.format('"%s":%d', code, count))
    end
    statuses = table.concat(parts, ",")
  end
end

function done(summary, latency, requests)
  local non2xx = 0
  local by_status = {}
  for _, thread in ipairs(threads) do
    non2xx = non2xx + (thread:get("non_2xx") or 0)
    local text = thread:get("statuses") or ""
    for code, count in string.gmatch(text, '"(%d+)":(%d+)') do
      by_status[code] = (by_status[code] or 0) + tonumber(count)
    end
  end
  local parts = {}
  for code, count in pairs(by_status) do
    table.insert(parts, string.format('"%s":%d', code, count))
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,'
      .. '"max_us":%d,"mean_us":%.1f,"non_2xx":%d,"statuses":{%s},"connect_errors":%d,'
      .. '"read_errors":%d,"write_errors":%d,"timeouts":%d}\n',
    summary.requests,
    summary.duration,
    latency:percentile(50),
    latency:percentile(95),
    latency:percentile(99),
    latency.max,
    latency.mean,
    non2xx,
    table.concat(parts, ","),
    errors.connect,
    errors.read,
    errors.write,
    errors.timeout
  ))
end
