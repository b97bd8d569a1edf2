-- tollway settlement: replace a ticket's holds with its real cost and its token estimates with real
-- counts, once per ticket (a retried settle after a lost reply changes nothing).
-- KEYS: the ticket's done marker, then 3 per rate fix (log zset, tokens hash, token sum),
--       3 per budget (state hash, reservation zset, holds hash).
-- ARGV: ticket, done ttl s, #rate fixes, #budgets, then op/tokens per fix, cost/expire_at per budget.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ticket, nr, nb = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local function int(n) return string.format('%d', n) end

if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  for i = 1, nr do
    local k, op, tokens = 2 + (i - 1) * 3, ARGV[5 + (i - 1) * 2], ARGV[6 + (i - 1) * 2]
    if op == 'add' then
      redis.call('ZADD', KEYS[k], now, ticket)
      redis.call('HSET', KEYS[k + 1], ticket, tokens)
      redis.call('INCRBY', KEYS[k + 2], tokens)
      for j = 0, 2 do redis.call('PEXPIRE', KEYS[k + j], 65000) end
    else
      local old = redis.call('HGET', KEYS[k + 1], ticket)
      if old then
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
  end
  for j = 1, nb do
    local k, a = 2 + nr * 3 + (j - 1) * 3, 5 + nr * 2 + (j - 1) * 2
    local hold = redis.call('HGET', KEYS[k + 2], ticket)
    if hold then
      redis.call('HDEL', KEYS[k + 2], ticket)
      redis.call('ZREM', KEYS[k + 1], ticket)
      redis.call('HINCRBY', KEYS[k], 'reserved', '-' .. hold)
    end
    redis.call('HINCRBY', KEYS[k], 'spent', ARGV[a])
    for i = 0, 2 do redis.call('EXPIREAT', KEYS[k + i], ARGV[a + 1]) end
  end
end

local out = {}
for j = 1, nb do
  local state = redis.call('HMGET', KEYS[2 + nr * 3 + (j - 1) * 3], 'spent', 'reserved')
  out[#out + 1] = state[1] or '0'
  out[#out + 1] = state[2] or '0'
end
return out
