-- Fault switching for lab.sh, loaded by the lab's dnsdist.conf.
-- Every fault is a set of rules with names 'lab-fault-N'; a new fault replaces the old.
-- labFault, labFaultEDE and labClear return one line of text, which the console prints:
-- a harness feeding a long-lived console reads that line as the acknowledgement that
-- the switch is done (the rules are active before the line is written).
local ffi = require('ffi')

local labRules = {}   -- { {remove = fn, name = 'lab-fault-N'}, ... }

function labClear()
  for _, r in ipairs(labRules) do
    r.remove(r.name)
  end
  labRules = {}
  return 'lab: faults cleared'
end

local function labAddWith(add, remove, rule, action)
  local name = 'lab-fault-' .. (#labRules + 1)
  add(rule, action, {name = name})
  table.insert(labRules, {remove = remove, name = name})
end

local function labAdd(rule, action)
  labAddWith(addAction, rmRule, rule, action)
end

function labFault(rule, action)
  labClear()
  labAdd(rule, action)
  return 'lab: fault set'
end

-- Append an Extended DNS Error option (RFC 8914) to the OPT record of the response in
-- dr, when the OPT record is the last record (as in the answers dnsdist generates). A
-- response without OPT is left alone: the query had no EDNS (RFC 6891 section 7).
-- Used when this dnsdist has no SetExtendedDNSErrorAction (it arrived in 1.9).
local function skipName(p, i, len)
  while i < len do
    local label = p[i]
    if label == 0 then return i + 1 end
    if label >= 0xC0 then return i + 2 end
    if label > 63 then return nil end
    i = i + 1 + label
  end
  return nil
end

local function appendEDE(dr, code, text)
  local C = ffi.C
  local len = C.dnsdist_ffi_dnsquestion_get_len(dr)
  local p = ffi.cast('uint8_t*', C.dnsdist_ffi_dnsquestion_get_header(dr))
  if len < 12 then return DNSResponseAction.None end
  local i = 12
  for _ = 1, p[4] * 256 + p[5] do
    i = skipName(p, i, len)
    if i == nil then return DNSResponseAction.None end
    i = i + 4
  end
  local records = (p[6] + p[8] + p[10]) * 256 + p[7] + p[9] + p[11]
  local optAt = nil
  for _ = 1, records do
    local start = i
    i = skipName(p, i, len)
    if i == nil or i + 10 > len then return DNSResponseAction.None end
    local rtype = p[i] * 256 + p[i + 1]
    local rdlen = p[i + 8] * 256 + p[i + 9]
    if rtype == 41 then optAt = start end
    i = i + 10 + rdlen
  end
  if optAt == nil or i ~= len or p[optAt] ~= 0 then return DNSResponseAction.None end
  local added = 4 + 2 + #text
  if not C.dnsdist_ffi_dnsquestion_set_size(dr, len + added) then
    return DNSResponseAction.None
  end
  p = ffi.cast('uint8_t*', C.dnsdist_ffi_dnsquestion_get_header(dr)) -- may have moved
  local rdlenAt = optAt + 9
  local rdlen = p[rdlenAt] * 256 + p[rdlenAt + 1] + added
  p[rdlenAt], p[rdlenAt + 1] = math.floor(rdlen / 256), rdlen % 256
  local bytes = {
    0, 15,                                               -- OPTION-CODE: EDE
    math.floor((2 + #text) / 256), (2 + #text) % 256,    -- OPTION-LENGTH
    math.floor(code / 256), code % 256,                  -- INFO-CODE
  }
  for k = 1, #bytes do p[len + k - 1] = bytes[k] end
  for k = 1, #text do p[len + #bytes + k - 1] = string.byte(text, k) end
  return DNSResponseAction.None
end

-- Answer every query with SERVFAIL carrying an Extended DNS Error.
function labFaultEDE(code, text)
  labClear()
  if SetExtendedDNSErrorAction ~= nil then
    -- dnsdist >= 1.9: the native action (not terminal), then the answer
    labAdd(AllRule(), SetExtendedDNSErrorAction(code, text))
    labAdd(AllRule(), RCodeAction(DNSRCode.SERVFAIL))
  else
    labAdd(AllRule(), RCodeAction(DNSRCode.SERVFAIL))
    labAddWith(addSelfAnsweredResponseAction, rmSelfAnsweredResponseRule, AllRule(),
      LuaFFIResponseAction(function(dr) return appendEDE(dr, code, text) end))
  end
  return 'lab: fault set'
end
