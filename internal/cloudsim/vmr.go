package cloudsim

import (
	"net/http"
	"strconv"
)

// maxReclaim is the most VMR IDs one reclaim request may name.
const maxReclaim = 100

// handleReclaim: POST /v1/usg/dcs/corp/vmr/recycle-from-member/{account}
// ?accountType=0|1 with a JSON array of 1..100 VMR IDs. All or nothing:
// when any VMR is not assigned to the account, none is reclaimed.
func (s *Sim) handleReclaim(r *http.Request, p []string) reply {
	if rep := s.authAccess(r); rep != nil {
		return *rep
	}
	account := p[0]
	accountType := 0
	if t := r.URL.Query().Get("accountType"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || (n != 0 && n != 1) {
			return paramError(OpReclaim, "accountType must be 0 or 1")
		}
		accountType = n
	}
	b, err := readBody(r)
	if err != nil {
		return paramError(OpReclaim, err.Error())
	}
	var ids []string
	if err := decodeStrict(b, &ids); err != nil {
		return paramError(OpReclaim, err.Error())
	}
	if len(ids) == 0 || len(ids) > maxReclaim {
		return paramError(OpReclaim, "the body must list 1 to 100 VMR IDs")
	}
	for _, id := range ids {
		if id == "" {
			return paramError(OpReclaim, "a VMR ID is empty")
		}
	}

	owner := vmrOwner{account: account, accountType: accountType}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if s.world.vmrs[id] != owner {
			return mmcError(codeMMCNoVMR, "The cloud meeting room does not exist or is not assigned to "+strconv.Quote(account))
		}
	}
	for _, id := range ids {
		if _, ok := s.world.vmrs[id]; ok {
			delete(s.world.vmrs, id)
			s.stats.effect("reclaim:" + account + "/" + id)
		}
	}
	return reply{status: http.StatusOK}
}
