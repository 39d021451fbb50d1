-- wrk driver of picket-bench's `webhooks` benchmark: replays a provider's pull request
-- deliveries that picket-bench made (and, for GitHub and Bitbucket, signed) beforehand (wrk's
-- Lua cannot compute an HMAC).
--
-- Arguments (after wrk's `--`): records template threads mode rate wrap
--   records   one delivery a line: delivery-id signature repo-id number head-sha before-sha
--             (signature `-` for a provider that signs nothing)
--   template  the headers, then the body in parts, one item a line:
--             "H <name> <value>" (a header, the same on every delivery), "F <name> <i>" (a
--             header whose value is field i of the record), "L <n>" + newline + n bytes +
--             newline (literal bytes of the body), or "S <i>" (field i of the record);
--             picket-bench built each signed body from the same parts, so the bytes and the
--             signature agree
--   threads   wrk's -t: thread k (1-based) sends records k, k + threads, k + 2 * threads, ...
--             so no two threads send the same delivery
--   mode      `peak` (closed loop, no pause) or `paced` (at most `rate` requests/s in all,
--             spaced on a monotonic clock; a late request goes at once, as an open-loop load
--             generator would send it)
--   rate      requests/s for `paced` (ignored for `peak`)
--   wrap      `wrap`: start the records again when they run out (the bare baseline, which
--             does not care); `once`: the same, but counted in `wrapped` so picket-bench fails
--             the run (every Picket delivery must be new)
--
-- `done` prints one line for picket-bench: `picket-bench key=value ...` (latencies in
-- microseconds, from wrk's own histogram).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

-- The body's parts, the fixed headers (into `fixed`) and the record-field headers (name ->
-- field index).
local function read_template(path, fixed)
  local f = assert(io.open(path, "rb"))
  local parts, fields = {}, {}
  while true do
    local line = f:read("*l")
    if not line then break end
    local name, value = line:match("^H (%S+) (.*)$")
    local field_name, field = line:match("^F (%S+) (%d+)$")
    local kind, n = line:match("^([LS]) (%d+)$")
    if name then
      fixed[name] = value
    elseif field_name then
      fields[field_name] = tonumber(field)
    else
      assert(kind, "bad template line: " .. line)
      n = tonumber(n)
      if kind == "L" then
        parts[#parts + 1] = f:read(n)
        f:read(1)
      else
        parts[#parts + 1] = n
      end
    end
  end
  f:close()
  return parts, fields
end

function init(args)
  local nthreads = tonumber(args[3])
  local mode, rate = args[4], tonumber(args[5])
  wrap = args[6] == "wrap"
  headers = {
    ["Host"] = wrk.headers["Host"],
    ["Content-Type"] = "application/json",
  }
  template, field_headers = read_template(args[2], headers)
  records = {}
  local i = 0
  for line in io.lines(args[1]) do
    if i % nthreads == id - 1 then
      local r = {}
      for field in line:gmatch("%S+") do r[#r + 1] = field end
      records[#records + 1] = r
    end
    i = i + 1
  end
  assert(#records > 0, "no records for thread " .. id)
  next_record, sent, ok, bad, wrapped = 1, 0, 0, 0, 0
  -- Answers by status ("202:812,503:3") and the first answer that was not 2xx.
  statuses, first_bad = {}, ""
  body = {}
  if mode == "paced" then
    local ffi = require("ffi")
    ffi.cdef [[
      typedef struct { long tv_sec; long tv_nsec; } picket_timespec;
      int clock_gettime(int clock_id, picket_timespec *tp);
    ]]
    local ts = ffi.new("picket_timespec")
    local function now_ms()
      ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
      return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
    end
    -- This thread's share of the rate: one request every `interval` ms, on a fixed schedule.
    local interval = 1000 * nthreads / rate
    local next_at = nil
    delay = function()
      local now = now_ms()
      if not next_at then next_at = now end
      next_at = next_at + interval
      local d = next_at - now
      if d <= 0 then return 0 end
      return math.floor(d)
    end
  end
end

function request()
  if next_record > #records then
    next_record = 1
    wrapped = wrapped + 1
  end
  local r = records[next_record]
  next_record = next_record + 1
  for i, p in ipairs(template) do
    if type(p) == "number" then body[i] = r[p] else body[i] = p end
  end
  for name, i in pairs(field_headers) do headers[name] = r[i] end
  sent = sent + 1
  return wrk.format("POST", wrk.path, headers, table.concat(body))
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. body:gsub("%s+", " ") end
  end
end

function done(summary, latency, requests)
  local sent, ok, bad, wrapped = 0, 0, 0, 0
  local statuses, bad_answer = {}, ""
  for _, t in ipairs(threads) do
    sent = sent + t:get("sent")
    ok = ok + t:get("ok")
    bad = bad + t:get("bad")
    if not t:get("wrap") then wrapped = wrapped + t:get("wrapped") end
    for code, n in pairs(t:get("statuses")) do
      statuses[code] = (statuses[code] or 0) + n
    end
    if bad_answer == "" then bad_answer = t:get("first_bad") or "" end
  end
  local list = {}
  for code, n in pairs(statuses) do list[#list + 1] = code .. ":" .. n end
  table.sort(list)
  local e = summary.errors
  io.write(string.format(
    "picket-bench requests=%d duration_us=%d sent=%d ok=%d bad=%d wrapped=%d " ..
    "p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, sent, ok, bad, wrapped,
    latency:percentile(50.0), latency:percentile(90.0), latency:percentile(99.0), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
  io.write("picket-bench-statuses " .. table.concat(list, ",") .. "\n")
  if bad_answer ~= "" then io.write("picket-bench-first-bad " .. bad_answer .. "\n") end
end
