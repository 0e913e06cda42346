-- The requests of one `npm run bench` run, for wrk (bench/wrk.ts starts it). Arguments after `--`, as
-- name=value: paths=FILE (request paths, one a line, sent in turn: rotating ids), method=GET|POST,
-- body=FILE (sent as JSON), keys=PREFIX (a unique Idempotency-Key per request). Other headers
-- (Authorization) come from wrk's -H. done() prints one line, "wrk-result {json}", that the bench reads.

local paths = {}
local sent = 0
local key_prefix
-- Global: probe.lua reads its own option from it.
options = {}

function init(args)
  for _, arg in ipairs(args) do
    local name, value = arg:match("^(%w+)=(.*)$")
    assert(name, "expected name=value, got " .. arg)
    options[name] = value
  end
  assert(options.paths, "paths= is required")
  for line in io.lines(options.paths) do
    if line ~= "" then paths[#paths + 1] = line end
  end
  assert(#paths > 0, "no paths in " .. options.paths)
  wrk.method = options.method or "GET"
  if options.body then
    local file = assert(io.open(options.body, "rb"))
    wrk.body = file:read("*a")
    file:close()
    wrk.headers["Content-Type"] = "application/json"
  end
  key_prefix = options.keys
end

function request()
  sent = sent + 1
  local path = paths[(sent - 1) % #paths + 1]
  if not key_prefix then return wrk.format(nil, path) end
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Idempotency-Key"] = key_prefix .. sent
  return wrk.format(nil, path, headers)
end

function done(summary, latency)
  local errors = summary.errors
  io.write(string.format(
    'wrk-result {"duration_us":%d,"requests":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
      '"non_2xx_3xx":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.duration, summary.requests, errors.connect, errors.read, errors.write, errors.status,
    errors.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
