package cloudsim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
)

// Fixture is a world to seed a simulator with, and the shape [Sim.State]
// and GET /_sim/state report. JSON example:
//
//	{"apps": [{"app_id": "a1", "rooms": ["r1"]}, {"app_id": "bulk", "auto_rooms": true}],
//	 "conferences": [{"conference_id": "900000001", "state": "ongoing",
//	                  "chair_password": "654321", "participants": ["p1"]}],
//	 "vmrs": [{"account": "alice", "account_type": 0, "vmr_ids": ["vmr-1"]}]}
type Fixture struct {
	Apps        []App           `json:"apps"`
	Conferences []Conference    `json:"conferences"`
	VMRs        []VMRAssignment `json:"vmrs"`
}

// LoadFixture adds the world described by a JSON [Fixture] to the
// simulator, replacing objects with the same IDs. Unknown fields are an
// error; on any error nothing is loaded.
func (s *Sim) LoadFixture(r io.Reader) error {
	var f Fixture
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("cloudsim: decoding fixture: %w", err)
	}
	return s.Seed(f)
}

// Seed adds a [Fixture] to the simulator, replacing objects with the same
// IDs. On a validation error nothing is added.
func (s *Sim) Seed(f Fixture) error {
	for _, a := range f.Apps {
		if err := a.validate(); err != nil {
			return fmt.Errorf("cloudsim: fixture: %w", err)
		}
	}
	for _, c := range f.Conferences {
		if err := c.validate(); err != nil {
			return fmt.Errorf("cloudsim: fixture: %w", err)
		}
	}
	for _, v := range f.VMRs {
		if err := v.validate(); err != nil {
			return fmt.Errorf("cloudsim: fixture: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range f.Apps {
		s.addAppLocked(a)
	}
	for _, c := range f.Conferences {
		s.addConferenceLocked(c)
	}
	for _, v := range f.VMRs {
		s.assignLocked(v)
	}
	return nil
}

// State returns the current world, sorted by ID, in fixture form: loading it
// into a new simulator reproduces it.
func (s *Sim) State() Fixture {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := Fixture{Apps: []App{}, Conferences: []Conference{}, VMRs: []VMRAssignment{}}
	for _, id := range slices.Sorted(maps.Keys(s.world.apps)) {
		f.Apps = append(f.Apps, s.world.apps[id].export(id))
	}
	for _, id := range slices.Sorted(maps.Keys(s.world.confs)) {
		f.Conferences = append(f.Conferences, s.world.confs[id].export())
	}
	byOwner := map[vmrOwner][]string{}
	for id, o := range s.world.vmrs {
		byOwner[o] = append(byOwner[o], id)
	}
	for o, ids := range byOwner {
		slices.Sort(ids)
		f.VMRs = append(f.VMRs, VMRAssignment{Account: o.account, AccountType: o.accountType, VMRIDs: ids})
	}
	slices.SortFunc(f.VMRs, func(a, b VMRAssignment) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.AccountType, b.AccountType))
	})
	return f
}

// ResetState empties the world and revokes every token. Statistics, the
// log and faults are kept (see [Sim.Reset]).
func (s *Sim) ResetState() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.world = newWorld()
	s.tokens = newTokenStore()
}
