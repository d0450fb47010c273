-- absorb.lua: take in the queues' intakes now (absorb in _common.lua), for reads that are not scripts:
-- a job's state, listings. The scripts that read waiting jobs do it themselves.
-- KEYS: one key per queue (keys.py Keys.head).
-- ARGV[1]: id-index prefix or '' (absorb indexes the ids it takes in)
-- Returns: how many intake entries it took, up to 1000 per queue (the caller repeats while any).
local taken = 0
for g = 1, groups() do taken = taken + absorb(g) end
return taken
