-- The history events a state change carries, shared by the start and finish scripts:
-- ARGV[i] is their number, then each event is one argument, its JSON text (the packed
-- form of flask_jobs.history.events). Adds them to the stream KEYS[k] (capped near
-- `maxlen`); returns the index of the first ARGV after them.
local function add_events(k, maxlen, i)
  local count = tonumber(ARGV[i])
  for j = i + 1, i + count do
    redis.call('XADD', KEYS[k], 'MAXLEN', '~', maxlen, '*', 'event', ARGV[j])
  end
  return i + count + 1
end
