package cloudsim

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoadFixture(t *testing.T) {
	t.Parallel()
	sim := New(Options{})
	require.NoError(t, sim.LoadFixture(strings.NewReader(`{
		"apps": [{"app_id": "a1", "rooms": ["r1", "r2"]}, {"app_id": "a2", "state": "DEACTIVATION"},
		         {"app_id": "bulk", "auto_rooms": true, "dismissed_rooms": ["gone"]}],
		"conferences": [{"conference_id": "c1", "state": "ongoing", "chair_password": "999999", "participants": ["p1"]},
		                {"conference_id": "c2"}],
		"vmrs": [{"account": "alice", "vmr_ids": ["v1", "v2"]}, {"account": "bob", "account_type": 1, "vmr_ids": ["v3"]}]
	}`)))
	require.True(t, sim.RoomExists("a1", "r2"))
	require.True(t, sim.RoomExists("bulk", "anything"))
	require.False(t, sim.RoomExists("bulk", "gone"))
	app, _ := sim.App("a2")
	require.Equal(t, AppDeactivation, app.State)
	c1, _ := sim.Conference("c1")
	require.Equal(t, ConfOngoing, c1.State)
	require.Equal(t, "999999", c1.ChairPassword)
	require.Equal(t, []string{"p1"}, c1.Participants)
	c2, _ := sim.Conference("c2")
	require.Equal(t, ConfScheduled, c2.State, "default state")
	require.Len(t, c2.ChairPassword, 6, "generated password")
	account, typ, ok := sim.VMROwner("v3")
	require.True(t, ok)
	require.Equal(t, "bob", account)
	require.Equal(t, 1, typ)
}

func TestFixtureRoundTrip(t *testing.T) {
	t.Parallel()
	sim, _ := setup(t)
	var buf bytes.Buffer
	require.NoError(t, json.NewEncoder(&buf).Encode(sim.State()))

	other := New(Options{})
	require.NoError(t, other.LoadFixture(&buf))
	require.Equal(t, sim.State(), other.State())
}

func TestLoadFixtureRejects(t *testing.T) {
	t.Parallel()
	const valid = `"conferences": [{"conference_id": "ok"}]`
	for name, in := range map[string]string{
		"unknown field":   `{` + valid + `, "apps": [{"app_id": "a", "colour": "red"}]}`,
		"empty app ID":    `{` + valid + `, "apps": [{"rooms": ["r"]}]}`,
		"bad app state":   `{` + valid + `, "apps": [{"app_id": "a", "state": "ARREARS"}]}`,
		"bad conf state":  `{"conferences": [{"conference_id": "ok"}, {"conference_id": "c", "state": "paused"}]}`,
		"bad accountType": `{` + valid + `, "vmrs": [{"account": "a", "account_type": 2, "vmr_ids": ["v"]}]}`,
		"empty VMR ID":    `{` + valid + `, "vmrs": [{"account": "a", "vmr_ids": [""]}]}`,
		"not JSON":        `{` + valid,
	} {
		sim := New(Options{})
		require.Error(t, sim.LoadFixture(strings.NewReader(in)), name)
		require.Equal(t, Fixture{Apps: []App{}, Conferences: []Conference{}, VMRs: []VMRAssignment{}}, sim.State(), "%s: nothing loaded", name)
	}
}

func TestGoAPIErrors(t *testing.T) {
	t.Parallel()
	sim := New(Options{})
	require.ErrorIs(t, sim.AddRoom("nope", "r"), ErrNotFound)
	require.ErrorIs(t, sim.AddParticipants("nope", "p"), ErrNotFound)
	require.ErrorIs(t, sim.SetConferenceState("nope", ConfEnded), ErrNotFound)
	require.Error(t, sim.SetConferenceState("nope", "paused"))
	require.Error(t, sim.AddApp(App{}))
	require.Error(t, sim.AddConference(Conference{}))
	require.Error(t, sim.AssignVMRs("", 0, "v"))

	require.NoError(t, sim.AddConference(Conference{ID: "c"}))
	require.NoError(t, sim.AddParticipants("c", "p1", "p2"))
	require.NoError(t, sim.SetConferenceState("c", ConfOngoing))
	c, _ := sim.Conference("c")
	require.Equal(t, []string{"p1", "p2"}, c.Participants)
}
