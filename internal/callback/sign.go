package callback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Header names of a delivery.
const (
	// SignatureHeader carries "t=UNIX,v1=HEX".
	SignatureHeader = "Meetops-Signature"
	// DeliveryHeader carries "<batch_id>:<n>".
	DeliveryHeader = "Meetops-Delivery"
)

// MaxAge is how old a signature's t receivers accept.
const MaxAge = 5 * time.Minute

// Sign returns the Meetops-Signature value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of t.body under secret>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature is a delivery whose signature does not verify.
var ErrBadSignature = errors.New("callback: bad signature")

// Verify checks a Meetops-Signature header against body at now, as a
// receiver does: the HMAC must match (compared in constant time) and t
// must be at most MaxAge old (or ahead). It is the receiver-side check the
// README shows in Go and Python.
func Verify(secret []byte, header string, body []byte, now time.Time) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(t, 0)); d > MaxAge || d < -MaxAge {
		return ErrBadSignature
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return ErrBadSignature
	}
	return nil
}
