package worker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/meetops/meetops/internal/apiclient"
	"github.com/meetops/meetops/internal/secretfile"
)

// reloginTick is how often the worker asks the client to try its rejected
// credentials again; the client itself waits AUTH_RETRY_INTERVAL between
// tries of one credential.
const reloginTick = time.Second

// upstream is what the worker needs of the upstream client besides the
// operations: its rejected credentials (readiness) and trying them again.
// *apiclient.Client implements it.
type upstream interface {
	Rejected() []apiclient.LoginState
	Relogin(ctx context.Context)
}

// loginWatch turns the client's login-state changes into a log line per
// transition and the meetops_credentials_rejected gauge, and re-reads
// rotated secrets for it. It never sees a secret's value but to hand it to
// the client.
type loginWatch struct {
	log      zerolog.Logger
	rejected *prometheus.GaugeVec
	files    map[string]string // variable → NAME_FILE path
	read     func(path string) (secret, warning string, err error)

	mu   sync.Mutex
	last map[string]string // field → the value last read, to log changes
}

func newLoginWatch(cfg Config, log zerolog.Logger, reg prometheus.Registerer) *loginWatch {
	lw := &loginWatch{
		log: log.With().Str("component", "auth").Logger(),
		rejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meetops_credentials_rejected",
			Help: "1 while the worker's logins with a credential (iam, meeting) are rejected, else 0.",
		}, []string{"credential"}),
		files: cfg.secretFiles,
		read:  secretfile.Read,
		last:  map[string]string{},
	}
	if reg != nil {
		reg.MustRegister(lw.rejected)
	}
	for _, c := range credentialsOf(cfg.API) {
		lw.rejected.WithLabelValues(c).Set(0)
	}
	return lw
}

// credentialsOf lists the credentials cfg logs in with.
func credentialsOf(c apiclient.Config) []string {
	var out []string
	if c.RTCAK == "" && c.IAMUser != "" {
		out = append(out, apiclient.CredentialIAM)
	}
	if c.MeetingAppID != "" || c.MeetingAccount != "" {
		out = append(out, apiclient.CredentialMeeting)
	}
	return out
}

// changed is apiclient.Config.OnLoginState.
func (lw *loginWatch) changed(st apiclient.LoginState) {
	if st.Credential == apiclient.CredentialIAM || st.Credential == apiclient.CredentialMeeting {
		v := 0.0
		if st.Status == apiclient.LoginRejected {
			v = 1
		}
		lw.rejected.WithLabelValues(st.Credential).Set(v)
	}
	ev := lw.log.Info()
	msg := "login succeeded: credentials accepted again"
	switch st.Status {
	case apiclient.LoginFailing:
		ev = lw.log.Warn()
		msg = "login failed: retried with backoff; tasks needing it are deferred without spending retries"
	case apiclient.LoginRejected:
		ev = lw.log.Error()
		msg = "credentials rejected: logins refused for AUTH_REJECT_WINDOW; tasks needing them dead-letter with reason auth and /readyz is not ready until a login succeeds (tried every AUTH_RETRY_INTERVAL, secrets re-read from their NAME_FILE)"
	}
	ev = ev.Str("credential", st.Credential).Str("login_state", st.Status.String())
	if st.Status != apiclient.LoginOK {
		ev = ev.Int("refusals", st.Refusals).Time("since", st.Since).AnErr("error", st.Err)
	}
	ev.Msg(msg)
}

// reload is apiclient.Config.ReloadSecret: the secret field's current
// content from its NAME_FILE, or "" (keep the one in use) when it has none
// or it cannot be read (logged, without the content).
func (lw *loginWatch) reload(field string) string {
	env := apiEnvName(field)
	path := lw.files[env]
	if path == "" {
		return ""
	}
	secret, _, err := lw.read(path)
	if err != nil {
		lw.log.Warn().Err(err).Str("variable", env+"_FILE").Msg("re-read secret after a refused login: keeping the one in use")
		return ""
	}
	lw.mu.Lock()
	prev, seen := lw.last[field]
	lw.last[field] = secret
	lw.mu.Unlock()
	if seen && prev != secret {
		lw.log.Info().Str("variable", env+"_FILE").Msg("secret file changed: the next login uses the new secret")
	}
	return secret
}

// notReady is /readyz's reason while credentials are rejected, naming
// them by their variables (never a secret), or "".
func notReady(rejected []apiclient.LoginState, api apiclient.Config) string {
	if len(rejected) == 0 {
		return ""
	}
	parts := make([]string, 0, len(rejected))
	for _, st := range rejected {
		vars := "IAM_USER/IAM_PASSWORD"
		if st.Credential == apiclient.CredentialMeeting {
			vars = "MEETING_ACCOUNT/MEETING_PASSWORD"
			if api.MeetingAppID != "" {
				vars = "MEETING_APP_ID/MEETING_APP_KEY"
			}
		}
		parts = append(parts, fmt.Sprintf("%s (%s): %d logins refused since %s", st.Credential, vars, st.Refusals,
			st.Since.UTC().Format(time.RFC3339)))
	}
	return "credentials rejected: " + strings.Join(parts, "; ")
}

// reloginLoop asks up to try its rejected credentials again every tick
// until ctx ends.
func reloginLoop(ctx context.Context, up upstream, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			up.Relogin(ctx)
		}
	}
}
