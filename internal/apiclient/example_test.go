package apiclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/meetops/meetops/internal/apiclient"
)

// A Client cancels a meeting; a failed call returns an *apiclient.Error that
// callers classify by status and code.
func Example() {
	// A stand-in for the Meeting API.
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/usg/acs/auth/account", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprint(w, `{"accessToken":"token-1","validPeriod":43200}`)
	})
	mux.HandleFunc("DELETE /v1/mmc/management/conferences", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Access-Token") != "token-1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Query().Get("conferenceID") != "914087436" {
			w.Header().Set("X-Request-Id", "req-2")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprint(w, `{"error_code":"MMC.111070005","error_msg":"meeting does not exist"}`)
			return
		}
		w.Header().Set("X-Request-Id", "req-1")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	client, err := apiclient.New(apiclient.Config{
		MeetingEndpoint: srv.URL,
		MeetingAccount:  "ops@example.com",
		MeetingPassword: "s3cret",
		Version:         "1.0.0",
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	resp, err := client.CancelConference(ctx, "914087436", "", true)
	fmt.Println(resp.Status, resp.RequestID, err)

	_, err = client.CancelConference(ctx, "1", "", false)
	var apiErr *apiclient.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Status, apiErr.Code)
	}
	fmt.Println(err)
	// Output:
	// 200 req-1 <nil>
	// 400 MMC.111070005
	// apiclient: cancel: HTTP 400 MMC.111070005: meeting does not exist (request_id req-2)
}
