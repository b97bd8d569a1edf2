-- Read budgets after releasing expired holds (remembered as late, as in admit.lua).
-- KEYS: 4 per budget (state hash, reservation zset, holds hash, late hash).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for k = 1, #KEYS, 4 do
  local old = redis.call('ZRANGEBYSCORE', KEYS[k + 1], '-inf', now)
  for _, member in ipairs(old) do
    local hold = redis.call('HGET', KEYS[k + 2], member)
    if hold then
      redis.call('HINCRBY', KEYS[k], 'reserved', '-' .. hold)
      redis.call('HDEL', KEYS[k + 2], member)
      redis.call('HSET', KEYS[k + 3], member, '1')
      if redis.call('TTL', KEYS[k + 3]) < 0 then redis.call('EXPIRE', KEYS[k + 3], 3024000) end  -- 35 days
    end
  end
  if #old > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[k + 1], '-inf', now) end
  local state = redis.call('HMGET', KEYS[k], 'spent', 'reserved')
  out[#out + 1] = state[1] or '0'
  out[#out + 1] = state[2] or '0'
end
return out
