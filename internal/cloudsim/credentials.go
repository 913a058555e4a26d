package cloudsim

// Credentials are the secrets a simulator accepts, one set for every
// authentication mode. Empty fields disable nothing: a mode whose fields are
// empty simply cannot be logged in to.
type Credentials struct {
	// AK/SK signing (RTC) and the project the signed requests must name.
	AK        string `json:"ak,omitempty"`
	SK        string `json:"sk,omitempty"`
	ProjectID string `json:"project_id,omitempty"`
	// IAM password authentication (RTC token mode).
	IAMUser      string `json:"iam_user,omitempty"`
	IAMPassword  string `json:"iam_password,omitempty"`
	IAMDomain    string `json:"iam_domain,omitempty"`
	IAMProjectID string `json:"iam_project_id,omitempty"`
	// Meeting App ID authentication. CorpID, when set, is the only corpId
	// accepted in SP mode; when empty any corpId is accepted.
	AppID  string `json:"app_id,omitempty"`
	AppKey string `json:"app_key,omitempty"`
	UserID string `json:"user_id,omitempty"`
	CorpID string `json:"corp_id,omitempty"`
	// Meeting account authentication (Basic).
	Account  string `json:"account,omitempty"`
	Password string `json:"password,omitempty"`
}

// DemoCredentials returns the fixed, obviously fake credentials of a
// simulator created without any (and of `cloudsim -demo`). The worker's dev
// mode uses them.
func DemoCredentials() Credentials {
	return Credentials{
		AK:           "CLOUDSIMDEMOAK000000",
		SK:           "cloudsim-demo-sk-not-a-real-secret",
		ProjectID:    "cloudsim0demo0project00000000000",
		IAMUser:      "cloudsim-iam-user",
		IAMPassword:  "cloudsim-iam-password-not-real",
		IAMDomain:    "cloudsim-domain",
		IAMProjectID: "cloudsim0demo0project00000000000",
		AppID:        "cloudsim0demo0meeting0app0000000",
		AppKey:       "cloudsim-demo-app-key-not-a-real-secret",
		UserID:       "cloudsim-demo-user",
		CorpID:       "",
		Account:      "cloudsim-admin",
		Password:     "cloudsim-password-not-real",
	}
}
