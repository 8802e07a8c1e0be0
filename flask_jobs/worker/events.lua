-- The history events a state change carries, shared by the start and finish scripts:
-- ARGV[i] is their number, then each event is its field count followed by field, value
-- pairs. Adds them to the stream KEYS[k] (capped near `maxlen`); returns the index of the
-- first ARGV after them.
local function add_events(k, maxlen, i)
  local count = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, count do
    local n = tonumber(ARGV[i])
    redis.call('XADD', KEYS[k], 'MAXLEN', '~', maxlen, '*', unpack(ARGV, i + 1, i + n))
    i = i + n + 1
  end
  return i
end
