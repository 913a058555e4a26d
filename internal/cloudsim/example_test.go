package cloudsim_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/cloudsim"
)

// A test serves the demo world, sends a signed request and checks what it
// did. The second dismiss of the same room is the "already done" 404.
func Example() {
	sim := cloudsim.New(cloudsim.Options{})
	sim.Demo()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Close()

	creds := sim.Credentials()
	dismiss := func() int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v2/apps/demo-app/rooms/room-001/dismiss", nil)
		req.Header.Set("X-Project-Id", creds.ProjectID)
		if err := (apiclient.Signer{AK: creds.AK, SK: creds.SK}).Sign(req, nil, time.Now()); err != nil {
			panic(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	fmt.Println(dismiss())
	fmt.Println(dismiss())
	st := sim.Stats()
	fmt.Println("effects:", st.Effect("dismiss:demo-app/room-001"), "requests:", st.Count(cloudsim.OpDismiss))
	// Output:
	// 202
	// 404
	// effects: 1 requests: 2
}

// Faults script what the next requests get; here two 503s, then the real
// answer.
func ExampleSim_SetFault() {
	sim := cloudsim.New(cloudsim.Options{})
	sim.Demo()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Close()

	if err := sim.SetFault(cloudsim.OpConfDetail, cloudsim.Fault{Script: []string{"503", "503", "ok"}}); err != nil {
		panic(err)
	}
	for range 3 {
		resp, err := http.Get(srv.URL + "/v1/mmc/management/conferences/confDetail?conferenceID=" + cloudsim.DemoConfOngoing)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode) // the third is 401: no X-Access-Token
	}
	// Output:
	// 503
	// 503
	// 401
}
