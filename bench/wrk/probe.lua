-- load.lua with a pause of delay=MS before each request: an orchestrator's probe asked often, not a load
-- (back to back, the probe itself would be the heaviest client on the machine).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "load.lua")

function delay()
  return tonumber(options.delay) or 0
end
