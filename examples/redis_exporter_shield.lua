-- Shield's counters for Prometheus's redis_exporter, which runs this script on every scrape:
--   redis_exporter -script examples/redis_exporter_shield.lua
-- and exports each pair as redis_script_values{key="<counter>"} (see docs/production.md).
-- SHIELD.stats replies field/value pairs; the exporter wants every element as a string.
local reply = redis.call('SHIELD.stats')
local out = {}
for i = 1, #reply, 2 do
  out[#out + 1] = reply[i]
  out[#out + 1] = tostring(reply[i + 1])
end
return out
