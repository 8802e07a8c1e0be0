"""The Lua scripts that read the rows of the live lists (`flask_jobs.ops.rows`): a few
fields of each job hash and the exception of its latest result, in one call."""

from __future__ import annotations

__all__ = ["LATEST", "READ"]

#: The rows of job ids, read in Lua. ARGV[1], ARGV[2]: the prefixes of a job's hash and
#: of its results stream; ARGV[3]: "1" to read each job's latest result; ARGV[4]: how many
#: hash fields follow; then how many pairs (job id, ended_at) follow: the jobs whose row
#: and failure the caller has read, at that end. Per job: the fields, then the latest
#: result's exc_string (nil when missing), all in one flat array (hiredis parses it in C;
#: packing the values into one string cost more in Lua, and more again to split in Python).
#: A job whose ended_at is the one its pair gives has its ended_at and meta read alone,
#: and 1 for its exc_string: a job's result is written, and its other fields change, only
#: when it runs, and a run ends by setting ended_at. Its XREVRANGE and the conversion of
#: its fields are most of a row's time in Redis.
ROWS = """
local errors = ARGV[3] == '1'
local width = tonumber(ARGV[4])
local fields, ended, meta = {}, 0, 0
for i = 1, width do
    fields[i] = ARGV[4 + i]
    if fields[i] == 'ended_at' then ended = i elseif fields[i] == 'meta' then meta = i end
end
local known, rest = {}, 6 + width + 2 * tonumber(ARGV[5 + width])
for i = 6 + width, rest - 1, 2 do known[ARGV[i]] = ARGV[i + 1] end
local function rows(ids, out, n)
    for _, id in ipairs(ids) do
        local seen = errors and known[id]
        local two = seen and redis.call('hmget', ARGV[1] .. id, 'ended_at', 'meta')
        if seen and two[1] == seen then
            for j = 1, width do out[n + j] = false end
            out[n + ended], out[n + meta] = two[1], two[2]
            n = n + width + 1
            out[n] = 1
        else
            local values = redis.call('hmget', ARGV[1] .. id, unpack(fields))
            for j = 1, width do
                n = n + 1
                out[n] = values[j]
            end
            local exc = false
            if errors then
                local latest = redis.call('xrevrange', ARGV[2] .. id, '+', '-', 'COUNT', 1)
                if latest[1] then
                    local payload = latest[1][2]
                    for j = 1, #payload, 2 do
                        if payload[j] == 'exc_string' then exc = payload[j + 1] end
                    end
                end
            end
            n = n + 1
            out[n] = exc
        end
    end
    return out
end
"""
#: The rest of ARGV: the job ids.
READ = (
    ROWS
    + """
local ids = {}
for i = rest, #ARGV do ids[#ids + 1] = ARGV[i] end
return rows(ids, {}, 0)
"""
)
#: KEYS: sorted sets of job ids (the failed registries). The rest of ARGV: the offset and
#: size of a page of their union, highest score first (score, then id, then key: highest
#: first). Replies {total of every set, ids..., their scores..., their set's index...},
#: then the ids' rows: the page and its rows in one call.
LATEST = (
    ROWS
    + """
local offset = tonumber(ARGV[rest])
local size = tonumber(ARGV[rest + 1])
local total, entries = 0, {}
-- one set: its page alone; several: the first offset + size of each, merged
local first = #KEYS == 1 and offset or 0
for k = 1, #KEYS do
    total = total + redis.call('zcard', KEYS[k])
    local found = redis.call('zrevrange', KEYS[k], first, offset + size - 1, 'WITHSCORES')
    for i = 1, #found, 2 do
        entries[#entries + 1] = {tonumber(found[i + 1]), found[i], KEYS[k], found[i + 1], k}
    end
end
if #KEYS > 1 then
    table.sort(entries, function(a, b)
        if a[1] ~= b[1] then return a[1] > b[1] end
        if a[2] ~= b[2] then return a[2] > b[2] end
        return a[3] > b[3]
    end)
else
    offset = 0
end
local ids, scores, sets = {}, {}, {}
for i = offset + 1, math.min(#entries, offset + size) do
    ids[#ids + 1] = entries[i][2]
    scores[#scores + 1] = entries[i][4]
    sets[#sets + 1] = entries[i][5]
end
local out = {total, #ids}
for _, list in ipairs({ids, scores, sets}) do
    for _, value in ipairs(list) do out[#out + 1] = value end
end
return rows(ids, out, #out)
"""
)
