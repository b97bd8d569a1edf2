-- tollway settlement: replace a ticket's holds with its real cost and its token estimates with real
-- counts. Idempotent without any per-ticket key: a budget counts a ticket's cost only while it still has
-- the ticket's hold (or remembers it as late, its hold expired), and rate fixes set values, so a settle
-- replayed after a lost reply changes nothing.
-- KEYS: 3 per rate fix (log zset, tokens hash, token sum), 4 per budget (state hash, reservation zset,
--       holds hash, late hash).
-- ARGV: ticket, #rate fixes, #budgets, then op/tokens per fix, cost/expire_at per budget.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ticket, nr, nb = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function int(n) return string.format('%d', n) end

for i = 1, nr do
  local k, op, tokens = 1 + (i - 1) * 3, ARGV[4 + (i - 1) * 2], ARGV[5 + (i - 1) * 2]
  local old = redis.call('HGET', KEYS[k + 1], ticket)
  if op == 'add' then
    if not old then
      redis.call('ZADD', KEYS[k], now, ticket)
      redis.call('HSET', KEYS[k + 1], ticket, tokens)
      redis.call('INCRBY', KEYS[k + 2], tokens)
      for j = 0, 2 do redis.call('PEXPIRE', KEYS[k + j], 65000) end
    end
  elseif old then
    if op == 'drop' then
      redis.call('HDEL', KEYS[k + 1], ticket)
      redis.call('ZREM', KEYS[k], ticket)
      redis.call('DECRBY', KEYS[k + 2], old)
    else
      redis.call('HSET', KEYS[k + 1], ticket, tokens)
      redis.call('INCRBY', KEYS[k + 2], int(tonumber(tokens) - tonumber(old)))
    end
  end
end

local out = {}
for j = 1, nb do
  local k, a = 1 + nr * 3 + (j - 1) * 4, 4 + nr * 2 + (j - 1) * 2
  local hold = redis.call('HGET', KEYS[k + 2], ticket)
  local counted = false
  if hold then
    redis.call('HDEL', KEYS[k + 2], ticket)
    redis.call('ZREM', KEYS[k + 1], ticket)
    redis.call('HINCRBY', KEYS[k], 'reserved', '-' .. hold)
    counted = true
  elseif redis.call('HDEL', KEYS[k + 3], ticket) == 1 then
    counted = true
  end
  if counted then
    redis.call('HINCRBY', KEYS[k], 'spent', ARGV[a])
    redis.call('EXPIREAT', KEYS[k], ARGV[a + 1])
  end
  local state = redis.call('HMGET', KEYS[k], 'spent', 'reserved')
  out[#out + 1] = state[1] or '0'
  out[#out + 1] = state[2] or '0'
end
return out
