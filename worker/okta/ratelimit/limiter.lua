-- oktasync rate limiter: the same transitions as algorithm.py, atomic in Redis.
-- KEYS[1] bucket hash, KEYS[2] tenant hash, KEYS[3] in-flight zset (lease -> expiry); all hash-tagged
-- {tenant} so one tenant's keys share a Redis Cluster slot.
-- ARGV: op ("acquire" | "release"), now ("" = Redis TIME), key TTL in ms, then op-specific arguments
-- (see the ends).
local B_KEY, T_KEY, I_KEY = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
-- Every write renews the keys' lifetime: an idle tenant's keys expire (LimiterConfig.key_ttl_seconds).
local TTL_MS = tonumber(ARGV[3])
local EARLY = 0.1  -- as algorithm.EARLY

local function fmt(x) return string.format('%.17g', x) end
local function num(v) if v then return tonumber(v) end return nil end
local function minn(stored, new) if stored == nil then return new end return math.min(stored, new) end
local function nonzero(v, d) if v and v ~= 0 then return v end return d end

local function effective_cap(low, at, max_in_flight, recovery)
  if not low or not at then return max_in_flight end
  return math.min(max_in_flight, low + math.floor((now - at) / recovery))
end

if op == 'acquire' then
  local use, share = ARGV[4], tonumber(ARGV[5])
  local max_in_flight, lease_seconds, lease = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
  local initial_limit, initial_window = tonumber(ARGV[9]), tonumber(ARGV[10])
  local pace_ahead, unknown_wait = tonumber(ARGV[11]), tonumber(ARGV[12])
  local in_flight_wait, recovery = tonumber(ARGV[13]), tonumber(ARGV[14])
  local end_probes, burst_fraction = tonumber(ARGV[15]), tonumber(ARGV[16])

  redis.call('ZREMRANGEBYSCORE', I_KEY, '-inf', fmt(now))  -- leases of killed workers
  local f = redis.call('HMGET', B_KEY, 'paused_until', 'limit', 'reset_at', 'wlen', 'gen', 'remaining',
    'used:' .. use, 'gen:' .. use, 'last:' .. use, 'known', 'resv:' .. use)
  local paused = num(f[1])
  if paused and now < paused then return {'wait', fmt(paused - now), 'paused'} end
  local limit = nonzero(num(f[2]), initial_limit)
  local reset_at = num(f[3])
  local gen, remaining = num(f[5]), num(f[6])
  if not reset_at or now >= reset_at then
    reset_at = now + nonzero(num(f[4]), initial_window)
    remaining = limit
    gen = (gen or 0) + 1
    redis.call('HSET', B_KEY, 'reset_at', fmt(reset_at), 'remaining', fmt(remaining), 'gen', fmt(gen), 'rolled', '1')
    redis.call('PEXPIRE', B_KEY, TTL_MS)
  end
  local used = num(f[7]) or 0
  if num(f[8]) ~= gen then used = 0 end
  local cap = math.max(1, math.floor(share * limit))
  if used >= cap then return {'wait', fmt(reset_at - now), 'share'} end
  if remaining < 1 then return {'wait', fmt(reset_at - now), 'rate'} end
  local avail = math.min(cap - used, remaining)
  local interval
  if avail > end_probes then
    interval = math.max(reset_at - pace_ahead - now, 0.0) / (avail - end_probes)
  else
    interval = math.max(reset_at - now, 0.0) / (avail + 1)
  end
  -- burst: not paced while more than (1 - burst_fraction) of the share would be left after it
  local unpaced = num(f[10]) == 1 and avail > end_probes and avail - 1 >= cap - math.floor(burst_fraction * cap)
  local last = num(f[9])
  local due = nil
  if not unpaced and last then due = last + interval end
  if num(f[10]) == 1 and avail <= end_probes then  -- end probes: in the window's last stretch
    local probe_at = reset_at - pace_ahead * avail / (end_probes + 1)
    if due == nil or probe_at > due then due = probe_at end
  end
  if due and now < due - interval * EARLY then
    if num(f[10]) ~= 1 then return {'wait', fmt(math.min(due - now, unknown_wait)), 'rate'} end
    -- waiters get distinct slots (the next one not promised yet)
    local slot = due
    local resv = num(f[11])
    if resv and resv >= slot and resv + interval <= reset_at then slot = resv + interval end
    redis.call('HSET', B_KEY, 'resv:' .. use, fmt(slot))
    return {'wait', fmt(slot - now), 'rate'}
  end
  local t = redis.call('HMGET', T_KEY, 'low', 'lowered_at')
  if redis.call('ZCARD', I_KEY) >= effective_cap(num(t[1]), num(t[2]), max_in_flight, recovery) then
    local first = redis.call('ZRANGE', I_KEY, 0, 0, 'WITHSCORES')
    return {'wait', fmt(math.min(tonumber(first[2]) - now, in_flight_wait)), 'in-flight'}
  end
  redis.call('HSET', B_KEY, 'remaining', fmt(remaining - 1), 'used:' .. use, fmt(used + 1),
    'gen:' .. use, fmt(gen), 'last:' .. use, fmt(now))
  redis.call('PEXPIRE', B_KEY, TTL_MS)
  redis.call('ZADD', I_KEY, fmt(now + lease_seconds), lease)
  redis.call('PEXPIRE', I_KEY, math.floor((lease_seconds + 60) * 1000))
  return {'permit'}
end

if op == 'release' then
  local lease, kind, status = ARGV[4], ARGV[5], tonumber(ARGV[6])
  local max_in_flight, recovery, lease_seconds = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
  local pause_margin, missing_pause = tonumber(ARGV[10]), tonumber(ARGV[11])
  local expiry = num(redis.call('ZSCORE', I_KEY, lease))
  local granted_at = nil
  if expiry then granted_at = expiry - lease_seconds end
  redis.call('ZREM', I_KEY, lease)
  if kind == 'none' then return 0 end
  if kind == 'noheaders' then
    if status == 429 then
      local paused = num(redis.call('HGET', B_KEY, 'paused_until')) or 0.0
      redis.call('HSET', B_KEY, 'remaining', '0', 'paused_until', fmt(math.max(paused, now + missing_pause)))
      redis.call('PEXPIRE', B_KEY, TTL_MS)
    end
    return 0
  end
  local o_limit, o_remaining, o_reset, o_seconds = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
  if o_limit == 0 and o_remaining == 0 then
    -- Okta's concurrency signal: fewer requests in flight, not a wait for the window.
    local t = redis.call('HMGET', T_KEY, 'low', 'lowered_at')
    local at = num(t[2])
    if not at or (granted_at and granted_at >= at) then  -- once per burst
      local low = math.max(1, math.floor(effective_cap(num(t[1]), at, max_in_flight, recovery) / 2))
      redis.call('HSET', T_KEY, 'low', fmt(low), 'lowered_at', fmt(now))
      redis.call('PEXPIRE', T_KEY, TTL_MS)
    end
    return 0
  end
  local f = redis.call('HMGET', B_KEY, 'window', 'known', 'rolled', 'remaining', 'gen', 'reset_at', 'wlen', 'paused_until')
  local window, known, rolled = num(f[1]), num(f[2]), num(f[3])
  local remaining, gen, reset_at = num(f[4]), num(f[5]), num(f[6])
  local est = now + o_seconds
  local current = true
  if not window or o_reset > window then
    if known ~= 1 then
      remaining = o_remaining
      gen = gen or 0
    elseif rolled == 1 then
      remaining = minn(remaining, o_remaining)
    else
      gen = (gen or 0) + 1
      remaining = o_remaining
    end
    window, reset_at = o_reset, est
    redis.call('HSET', B_KEY, 'gen', fmt(gen), 'window', fmt(window), 'rolled', '0', 'known', '1')
  elseif o_reset == window and rolled ~= 1 then
    remaining = minn(remaining, o_remaining)
    reset_at = minn(reset_at, est)
  else
    current = false  -- a late answer from a window already over
  end
  if current then
    local paused = num(f[8])
    if status == 429 then
      remaining = 0
      paused = math.max(paused or 0.0, est + pause_margin)
    end
    redis.call('HSET', B_KEY, 'remaining', fmt(remaining), 'reset_at', fmt(reset_at), 'limit', fmt(o_limit),
      'wlen', fmt(math.max(num(f[7]) or 0.0, o_seconds)))
    if paused then redis.call('HSET', B_KEY, 'paused_until', fmt(paused)) end
    redis.call('PEXPIRE', B_KEY, TTL_MS)
  end
  return 0
end

return redis.error_reply('oktasync limiter: unknown op ' .. tostring(op))
