package worker

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meetops/meetops/internal/apiclient"
)

// Every variable of the settings table is documented where operators look:
// .env.example (set or commented out) and the README's configuration
// tables. (This replaces a grep of config.go's source in the Makefile.)
func TestEverySettingIsDocumented(t *testing.T) {
	t.Parallel()
	env, err := os.ReadFile("../../.env.example")
	require.NoError(t, err)
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	var c Config
	for _, s := range c.settings() {
		require.Regexp(t, regexp.MustCompile(`(?m)^#*`+s.env+`=`), string(env), ".env.example does not list %s", s.env)
		require.Contains(t, string(readme), "`"+s.env+"`", "README.md does not document %s", s.env)
		if s.secret {
			require.Empty(t, s.flag, "%s is a secret: no flag (it would show in ps)", s.env)
		} else {
			require.NotEmpty(t, s.flag, s.env)
		}
	}
}

// Every apiclient.Config field an operator sets has a variable, so the
// client's validation messages name variables, never Go field names.
func TestEveryAPIFieldHasAVariable(t *testing.T) {
	t.Parallel()
	// Login comes from the worker's AUTH_* settings (Config.AuthReject*),
	// the others are the worker's own hooks.
	notSettings := map[string]bool{"HTTPClient": true, "Version": true, "Now": true, "Observe": true,
		"Login": true, "ReloadSecret": true, "OnLoginState": true}
	typ := reflect.TypeOf(apiclient.Config{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		if notSettings[f.Name] {
			continue
		}
		env := apiEnvName(f.Name)
		require.NotEqual(t, f.Name, env, "apiclient.Config.%s has no setting", f.Name)
		require.Equal(t, strings.ToUpper(env), env)
	}
	err := Config{API: apiclient.Config{RTCAK: "AK", MeetingAppKey: "k"}}.WithDefaults().Validate()
	require.ErrorContains(t, err, "RTC AK/SK mode (RTC_AK set) also needs RTC_SK, RTC_PROJECT_ID")
	require.ErrorContains(t, err, "MEETING_APP_KEY is set but MEETING_APP_ID is not")
}
