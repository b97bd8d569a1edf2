-- tollway admission: revocation, rolling-minute rate limits, budget reservations and deployment pacing,
-- checked and applied atomically (see accounting/counters.py for the semantics).
-- KEYS: revoked set, then 3 per rate (log zset, tokens hash, token sum), 4 per budget (state hash,
--       reservation zset, holds hash, late hash), 3 per pacing deployment.
-- ARGV: ticket, key id, hold ms, #rates, #budgets, #pacing, then rpm/tpm/tokens per rate,
--       limit/soft/hold/expire_at per budget, rpm/tpm/tokens per pacing deployment ("" = no limit).
-- Money is whole nano-dollars passed as strings; Lua doubles compare them exactly below 2^53.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local WINDOW = 60000
local ticket, key_id, hold_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local nr, nb, np = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local function int(n) return string.format('%d', n) end
local function limit(v) if v == '' then return nil end return tonumber(v) end

if key_id ~= '' and redis.call('SISMEMBER', KEYS[1], key_id) == 1 then
  return {'revoked'}
end

local function purge_rate(k)
  local old = redis.call('ZRANGEBYSCORE', KEYS[k], '-inf', now - WINDOW)
  if #old == 0 then return end
  local freed = 0
  for _, member in ipairs(old) do
    freed = freed + (tonumber(redis.call('HGET', KEYS[k + 1], member)) or 0)
    redis.call('HDEL', KEYS[k + 1], member)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now - WINDOW)
  if freed ~= 0 then redis.call('DECRBY', KEYS[k + 2], int(freed)) end
end

-- nil if one more request fits, else kind and milliseconds until it would (-1: never)
local function refusal(k, rpm, tpm, tokens)
  if rpm and redis.call('ZCARD', KEYS[k]) + 1 > rpm then
    local first = redis.call('ZRANGE', KEYS[k], 0, 0, 'WITHSCORES')
    return 'rpm', tonumber(first[2]) + WINDOW - now
  end
  if tpm then
    local total = tonumber(redis.call('GET', KEYS[k + 2]) or '0')
    if total + tokens > tpm then
      if tokens > tpm then return 'tpm', -1 end
      local need, freed = total + tokens - tpm, 0
      local entries = redis.call('ZRANGE', KEYS[k], 0, -1, 'WITHSCORES')
      for i = 1, #entries, 2 do
        freed = freed + (tonumber(redis.call('HGET', KEYS[k + 1], entries[i])) or 0)
        if freed >= need then return 'tpm', tonumber(entries[i + 1]) + WINDOW - now end
      end
      return 'tpm', WINDOW
    end
  end
  return nil
end

local function add_rate(k, tokens)
  redis.call('ZADD', KEYS[k], now, ticket)
  redis.call('HSET', KEYS[k + 1], ticket, tokens)
  redis.call('INCRBY', KEYS[k + 2], tokens)
  for i = 0, 2 do redis.call('PEXPIRE', KEYS[k + i], WINDOW + 5000) end
end

-- an expired hold is released, and its ticket remembered as late: its settle still counts its cost, once
local function purge_budget(k)
  local old = redis.call('ZRANGEBYSCORE', KEYS[k + 1], '-inf', now)
  if #old == 0 then return end
  for _, member in ipairs(old) do
    local hold = redis.call('HGET', KEYS[k + 2], member)
    if hold then
      redis.call('HINCRBY', KEYS[k], 'reserved', '-' .. hold)
      redis.call('HDEL', KEYS[k + 2], member)
      redis.call('HSET', KEYS[k + 3], member, '1')
      if redis.call('TTL', KEYS[k + 3]) < 0 then redis.call('EXPIRE', KEYS[k + 3], 3024000) end  -- 35 days
    end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 1], '-inf', now)
end

local rate_key = function(i) return 2 + (i - 1) * 3 end
local budget_key = function(j) return 2 + nr * 3 + (j - 1) * 4 end
local pacing_key = function(p) return 2 + nr * 3 + nb * 4 + (p - 1) * 3 end
local rate_arg = function(i) return 7 + (i - 1) * 3 end
local budget_arg = function(j) return 7 + nr * 3 + (j - 1) * 4 end
local pacing_arg = function(p) return 7 + nr * 3 + nb * 4 + (p - 1) * 3 end

for i = 1, nr do
  local k, a = rate_key(i), rate_arg(i)
  purge_rate(k)
  local kind, retry = refusal(k, limit(ARGV[a]), limit(ARGV[a + 1]), tonumber(ARGV[a + 2]))
  if kind then return {kind, i - 1, retry} end
end

local spent, reserved = {}, {}
for j = 1, nb do
  local k, a = budget_key(j), budget_arg(j)
  purge_budget(k)
  local state = redis.call('HMGET', KEYS[k], 'spent', 'reserved')
  spent[j], reserved[j] = tonumber(state[1] or '0'), tonumber(state[2] or '0')
  if spent[j] + reserved[j] + tonumber(ARGV[a + 2]) > tonumber(ARGV[a]) then
    return {'budget', j - 1, state[1] or '0', state[2] or '0'}
  end
end

local paced, soonest = -1, -1
for p = 1, np do
  local k, a = pacing_key(p), pacing_arg(p)
  local rpm, tpm = limit(ARGV[a]), limit(ARGV[a + 1])
  if not rpm and not tpm then paced = p - 1 break end
  purge_rate(k)
  local kind, retry = refusal(k, rpm, tpm, tonumber(ARGV[a + 2]))
  if not kind then
    add_rate(k, ARGV[a + 2])
    paced = p - 1
    break
  end
  if retry >= 0 and (soonest < 0 or retry < soonest) then soonest = retry end
end
if np > 0 and paced < 0 then return {'pacing', -1, soonest} end

for i = 1, nr do add_rate(rate_key(i), ARGV[rate_arg(i) + 2]) end

local out = {'ok', paced}
for j = 1, nb do
  local k, a = budget_key(j), budget_arg(j)
  local hold, soft = ARGV[a + 2], tonumber(ARGV[a + 1])
  redis.call('HINCRBY', KEYS[k], 'reserved', hold)
  redis.call('ZADD', KEYS[k + 1], now + hold_ms, ticket)
  redis.call('HSET', KEYS[k + 2], ticket, hold)
  for i = 0, 2 do redis.call('EXPIREAT', KEYS[k + i], ARGV[a + 3]) end
  local crossed = 0
  if soft > 0 and spent[j] + reserved[j] + tonumber(hold) >= soft and redis.call('HSETNX', KEYS[k], 'alerted', '1') == 1 then
    crossed = 1
  end
  out[#out + 1] = int(spent[j])
  out[#out + 1] = int(reserved[j] + tonumber(hold))
  out[#out + 1] = crossed
end
return out
