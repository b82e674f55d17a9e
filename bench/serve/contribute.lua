-- wrk script for `acme serve`: every request a new contribution under its own Idempotency-Key
-- (thread number and counter, so no two requests share one), spread over MEMBERS members
-- registered beforehand as M-1 .. M-MEMBERS (see bench/serve/run.sh).
local token = os.getenv("TOKEN")
local members = tonumber(os.getenv("MEMBERS") or "100")
local threads = {}
local counter = 0

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local member = (counter % members) + 1
  local body = '{"member_id": "M-' .. member .. '", "kind": "contribute", "amount": "1.00"}'
  local headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = '"bench-' .. thread_id .. '-' .. counter .. '"',
    ["Content-Type"] = "application/json",
  }
  return wrk.format("POST", "/v1/instructions", headers, body)
end


function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end
