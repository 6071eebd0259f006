-- A token bucket as users write it in Lua: a hash with the level and the last refill time,
-- refilled from the server's TIME. KEYS[1]; ARGV: capacity, period (s), tokens.
-- Replies the tokens left (rounded down), or -1 when too few are left.
local capacity = tonumber(ARGV[1])
local period_ms = tonumber(ARGV[2]) * 1000
local cost = tonumber(ARGV[3])
local time = redis.call('TIME')
local now_ms = time[1] * 1000 + math.floor(time[2] / 1000)
local state = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now_ms
level = math.min(capacity, level + (now_ms - at) * capacity / period_ms)
if level < cost then
  return -1
end
level = level - cost
redis.call('HSET', KEYS[1], 'level', level, 'at', now_ms)
redis.call('PEXPIRE', KEYS[1], period_ms)
return math.floor(level)
