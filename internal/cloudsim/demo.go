package cloudsim

import (
	"fmt"
	"time"
)

// Demo IDs (see [DemoFixture]). The "missing" ones do not exist in the demo
// world, so requests naming them answer 4xx and bulk examples can produce
// dead letters.
const (
	DemoApp         = "demo-app"          // active; rooms room-001 … room-010
	DemoAppBulk     = "demo-app-bulk"     // active; AutoRooms: every room exists until dismissed
	DemoApp2        = "demo-app-2"        // active; rooms room-001 … room-003 (disable it)
	DemoAppDisabled = "demo-app-disabled" // DEACTIVATION: dismiss/disable → 400 RTC.00001016
	DemoAppMissing  = "demo-app-missing"  // absent: dismiss/disable → 404
	DemoRoomMissing = "room-404"          // absent from every app but demo-app-bulk: dismiss → 404

	DemoConfScheduled  = "900000001" // scheduled: cancel → 200
	DemoConfScheduled2 = "900000002" // scheduled
	DemoConfOngoing    = "900000010" // in progress, participants p-001 … p-010
	DemoConfOngoing2   = "900000011" // in progress, participants p-101 … p-105
	DemoConfEnded      = "900000020" // ended: cancel/hang-up/control token → 400 MMC.111072006
	DemoConfCancelled  = "900000021" // cancelled: cancel → 400 MMC.111072006
	DemoConfMissing    = "900000404" // absent: cancel/detail → 400 MMC.111070005

	DemoChairPassword = "654321" // host password of every demo meeting
	DemoGuestPassword = "123456" // guest password of every demo meeting

	DemoVMRAccount    = "member-alice"     // accountType 0: vmr-alice-1 … vmr-alice-3
	DemoVMRThirdParty = "tp-user-bob"      // accountType 1: vmr-bob-1, vmr-bob-2
	DemoVMRUnassigned = "vmr-unassigned-1" // assigned to nobody: reclaim → 400 MMC.111070006
)

// DemoFixture is the demo world of `cloudsim -demo` and [Sim.Demo].
func DemoFixture() Fixture {
	start := time.Date(2030, 1, 6, 9, 0, 0, 0, time.UTC)
	conf := func(id string, st ConferenceState, subject string, participants ...string) Conference {
		return Conference{ID: id, State: st, Subject: subject, ChairPassword: DemoChairPassword,
			GuestPassword: DemoGuestPassword, Participants: participants, StartTime: start}
	}
	return Fixture{
		Apps: []App{
			{ID: DemoApp, Rooms: seq("room-%03d", 1, 10)},
			{ID: DemoAppBulk, AutoRooms: true},
			{ID: DemoApp2, Rooms: seq("room-%03d", 1, 3)},
			{ID: DemoAppDisabled, State: AppDeactivation, Rooms: seq("room-%03d", 1, 3)},
		},
		Conferences: []Conference{
			conf(DemoConfScheduled, ConfScheduled, "Weekly planning"),
			conf(DemoConfScheduled2, ConfScheduled, "Quarterly review"),
			conf(DemoConfOngoing, ConfOngoing, "All hands", seq("p-%03d", 1, 10)...),
			conf(DemoConfOngoing2, ConfOngoing, "Incident bridge", seq("p-%03d", 101, 105)...),
			conf(DemoConfEnded, ConfEnded, "Yesterday's stand-up"),
			conf(DemoConfCancelled, ConfCancelled, "Cancelled offsite"),
		},
		VMRs: []VMRAssignment{
			{Account: DemoVMRAccount, AccountType: 0, VMRIDs: seq("vmr-alice-%d", 1, 3)},
			{Account: DemoVMRThirdParty, AccountType: 1, VMRIDs: seq("vmr-bob-%d", 1, 2)},
		},
	}
}

// Demo seeds the simulator with [DemoFixture].
func (s *Sim) Demo() {
	if err := s.Seed(DemoFixture()); err != nil {
		panic(fmt.Sprintf("cloudsim: demo fixture is invalid: %v", err)) // a bug in DemoFixture
	}
}

// seq formats IDs format%from … format%to.
func seq(format string, from, to int) []string {
	out := make([]string, 0, to-from+1)
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf(format, i))
	}
	return out
}
