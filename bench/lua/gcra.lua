-- GCRA with one value per key (the theoretical arrival time, in ms), the shape go-redis's
-- redis_rate uses. KEYS[1]; ARGV: burst, period (s), tokens. The rate is burst per period.
-- Replies the calls still allowed right now, or -1 when limited.
local burst = tonumber(ARGV[1])
local emission_ms = tonumber(ARGV[2]) * 1000 / burst
local cost = tonumber(ARGV[3])
local time = redis.call('TIME')
local now_ms = time[1] * 1000 + time[2] / 1000
local tat = tonumber(redis.call('GET', KEYS[1])) or now_ms
if tat < now_ms then
  tat = now_ms
end
local new_tat = tat + emission_ms * cost
local allow_at = new_tat - burst * emission_ms
if now_ms < allow_at then
  return -1
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.max(1, math.ceil(new_tat - now_ms)))
return math.floor((now_ms - allow_at) / emission_ms)
