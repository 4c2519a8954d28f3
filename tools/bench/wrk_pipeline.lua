-- wrk_pipeline.lua - send DEPTH copies of the request in one write and
-- count every response: the pipelined load of tools/bench/httpd_vs_peers.sh.
--   wrk -s tools/bench/wrk_pipeline.lua URL -- DEPTH     (DEPTH default 16)
local batch

function init(args)
    local depth = tonumber(args[1]) or 16
    local reqs = {}
    for i = 1, depth do
        reqs[i] = wrk.format(nil)
    end
    batch = table.concat(reqs)
end

function request()
    return batch
end
