package cloudsim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// AppState is the state of an RTC application.
type AppState string

// RTC application states.
const (
	AppActivation   AppState = "ACTIVATION"
	AppDeactivation AppState = "DEACTIVATION"
)

// ConferenceState is the life-cycle state of a meeting.
type ConferenceState string

// Meeting states. A scheduled meeting is cancelled; an ongoing one is ended.
const (
	ConfScheduled ConferenceState = "scheduled"
	ConfOngoing   ConferenceState = "ongoing"
	ConfEnded     ConferenceState = "ended"
	ConfCancelled ConferenceState = "cancelled"
)

// App is an RTC application as seeded and as reported by [Sim.State].
type App struct {
	ID    string   `json:"app_id"`
	State AppState `json:"state,omitempty"` // default ACTIVATION
	// AutoRooms makes every room ID that has not been dismissed exist, for
	// bulk and benchmark runs with any number of rooms.
	AutoRooms bool     `json:"auto_rooms,omitempty"`
	Rooms     []string `json:"rooms,omitempty"`
	// DismissedRooms lists the rooms of an AutoRooms app that were dismissed
	// (and so no longer exist).
	DismissedRooms []string  `json:"dismissed_rooms,omitempty"`
	UpdateTime     time.Time `json:"update_time,omitzero"`
}

// Conference is a meeting as seeded and as reported by [Sim.State].
type Conference struct {
	ID      string          `json:"conference_id"`
	State   ConferenceState `json:"state,omitempty"` // default scheduled
	Subject string          `json:"subject,omitempty"`
	// ChairPassword is the host password (the one a control token needs);
	// GuestPassword the participants'. Empty ones are generated.
	ChairPassword string `json:"chair_password,omitempty"`
	GuestPassword string `json:"guest_password,omitempty"`
	// UserUUID, when set, is the owner: a cancel naming another userUUID is
	// refused (MMC.111070010).
	UserUUID     string    `json:"user_uuid,omitempty"`
	Participants []string  `json:"participants,omitempty"`
	StartTime    time.Time `json:"start_time,omitzero"`
}

// VMRAssignment assigns cloud meeting rooms to an account. AccountType 0 is a
// Huawei Cloud Meeting account, 1 a third-party user ID.
type VMRAssignment struct {
	Account     string   `json:"account"`
	AccountType int      `json:"account_type,omitempty"`
	VMRIDs      []string `json:"vmr_ids"`
}

type app struct {
	state      AppState
	autoRooms  bool
	rooms      map[string]struct{}
	dismissed  map[string]struct{}
	updateTime time.Time
}

func (a *app) hasRoom(id string) bool {
	if _, ok := a.rooms[id]; ok {
		return true
	}
	_, gone := a.dismissed[id]
	return a.autoRooms && !gone
}

func (a *app) dismiss(id string) {
	delete(a.rooms, id)
	if a.autoRooms {
		a.dismissed[id] = struct{}{}
	}
}

type conference struct {
	Conference
	participants map[string]struct{}
}

type vmrOwner struct {
	account     string
	accountType int
}

type world struct {
	apps  map[string]*app
	confs map[string]*conference
	vmrs  map[string]vmrOwner
}

func newWorld() world {
	return world{apps: map[string]*app{}, confs: map[string]*conference{}, vmrs: map[string]vmrOwner{}}
}

// ErrNotFound is returned by the Go API for an app or conference that does
// not exist.
var ErrNotFound = errors.New("cloudsim: not found")

func (a App) validate() error {
	if a.ID == "" {
		return errors.New("app: empty app_id")
	}
	switch a.State {
	case "", AppActivation, AppDeactivation:
	default:
		return fmt.Errorf("app %q: unknown state %q", a.ID, a.State)
	}
	return nil
}

func (c Conference) validate() error {
	if c.ID == "" {
		return errors.New("conference: empty conference_id")
	}
	switch c.State {
	case "", ConfScheduled, ConfOngoing, ConfEnded, ConfCancelled:
	default:
		return fmt.Errorf("conference %q: unknown state %q", c.ID, c.State)
	}
	return nil
}

func (v VMRAssignment) validate() error {
	if v.Account == "" {
		return errors.New("vmr assignment: empty account")
	}
	if v.AccountType != 0 && v.AccountType != 1 {
		return fmt.Errorf("vmr assignment %q: account_type %d is not 0 or 1", v.Account, v.AccountType)
	}
	for _, id := range v.VMRIDs {
		if id == "" {
			return fmt.Errorf("vmr assignment %q: empty VMR ID", v.Account)
		}
	}
	return nil
}

// AddApp adds an RTC application, replacing one with the same ID.
func (s *Sim) AddApp(a App) error {
	if err := a.validate(); err != nil {
		return fmt.Errorf("cloudsim: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addAppLocked(a)
	return nil
}

func (s *Sim) addAppLocked(a App) {
	st := a.State
	if st == "" {
		st = AppActivation
	}
	in := &app{state: st, autoRooms: a.AutoRooms, rooms: map[string]struct{}{}, dismissed: map[string]struct{}{}, updateTime: a.UpdateTime}
	if in.updateTime.IsZero() {
		in.updateTime = s.now()
	}
	for _, r := range a.Rooms {
		in.rooms[r] = struct{}{}
	}
	for _, r := range a.DismissedRooms {
		in.dismissed[r] = struct{}{}
	}
	s.world.apps[a.ID] = in
}

// AddRoom creates a room in an existing app (re-creating a dismissed one).
func (s *Sim) AddRoom(appID, roomID string) error {
	if roomID == "" {
		return errors.New("cloudsim: empty room ID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.world.apps[appID]
	if !ok {
		return fmt.Errorf("cloudsim: app %q: %w", appID, ErrNotFound)
	}
	a.rooms[roomID] = struct{}{}
	delete(a.dismissed, roomID)
	return nil
}

// AddConference adds a meeting, replacing one with the same ID. Empty
// passwords are generated.
func (s *Sim) AddConference(c Conference) error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("cloudsim: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addConferenceLocked(c)
	return nil
}

func (s *Sim) addConferenceLocked(c Conference) {
	if c.State == "" {
		c.State = ConfScheduled
	}
	if c.ChairPassword == "" {
		c.ChairPassword = s.randDigitsLocked(6)
	}
	if c.GuestPassword == "" {
		c.GuestPassword = s.randDigitsLocked(6)
	}
	if c.StartTime.IsZero() {
		c.StartTime = s.now().UTC().Truncate(time.Minute)
	}
	in := &conference{Conference: c, participants: map[string]struct{}{}}
	for _, p := range c.Participants {
		in.participants[p] = struct{}{}
	}
	in.Participants = nil
	s.world.confs[c.ID] = in
}

// SetConferenceState moves a meeting to another state (for example starts a
// scheduled one). Ending or cancelling it removes its participants.
func (s *Sim) SetConferenceState(id string, state ConferenceState) error {
	if err := (Conference{ID: id, State: state}).validate(); err != nil || state == "" {
		return fmt.Errorf("cloudsim: conference %q: bad state %q", id, state)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.world.confs[id]
	if !ok {
		return fmt.Errorf("cloudsim: conference %q: %w", id, ErrNotFound)
	}
	c.State = state
	if state == ConfEnded || state == ConfCancelled {
		clear(c.participants)
	}
	return nil
}

// AddParticipants puts participants into a meeting.
func (s *Sim) AddParticipants(confID string, participantIDs ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.world.confs[confID]
	if !ok {
		return fmt.Errorf("cloudsim: conference %q: %w", confID, ErrNotFound)
	}
	for _, p := range participantIDs {
		c.participants[p] = struct{}{}
	}
	return nil
}

// AssignVMRs assigns cloud meeting rooms to an account (accountType 0: a
// Meeting account, 1: a third-party user ID), taking them from any previous
// owner.
func (s *Sim) AssignVMRs(account string, accountType int, vmrIDs ...string) error {
	v := VMRAssignment{Account: account, AccountType: accountType, VMRIDs: vmrIDs}
	if err := v.validate(); err != nil {
		return fmt.Errorf("cloudsim: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assignLocked(v)
	return nil
}

func (s *Sim) assignLocked(v VMRAssignment) {
	for _, id := range v.VMRIDs {
		s.world.vmrs[id] = vmrOwner{account: v.Account, accountType: v.AccountType}
	}
}

// App returns an application's current state.
func (s *Sim) App(id string) (App, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.world.apps[id]
	if !ok {
		return App{}, false
	}
	return a.export(id), true
}

func (a *app) export(id string) App {
	return App{
		ID: id, State: a.state, AutoRooms: a.autoRooms, UpdateTime: a.updateTime,
		Rooms:          slices.Sorted(maps.Keys(a.rooms)),
		DismissedRooms: slices.Sorted(maps.Keys(a.dismissed)),
	}
}

// RoomExists reports whether a room exists (and so can be dismissed).
func (s *Sim) RoomExists(appID, roomID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.world.apps[appID]
	return ok && a.hasRoom(roomID)
}

// Conference returns a meeting's current state.
func (s *Sim) Conference(id string) (Conference, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.world.confs[id]
	if !ok {
		return Conference{}, false
	}
	return c.export(), true
}

func (c *conference) export() Conference {
	out := c.Conference
	out.Participants = slices.Sorted(maps.Keys(c.participants))
	return out
}

// VMROwner returns the account a cloud meeting room is assigned to.
func (s *Sim) VMROwner(vmrID string) (account string, accountType int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.world.vmrs[vmrID]
	return o.account, o.accountType, ok
}

// randDigitsLocked returns n random decimal digits. Callers hold s.mu.
func (s *Sim) randDigitsLocked(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + s.rng.IntN(10))
	}
	return string(b)
}
