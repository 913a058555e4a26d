package ledger

import "context"

// ResendBegin sends Begin's commands again with ls's token, as go-redis
// does when a reply was lost.
func ResendBegin(ctx context.Context, l *Ledger, key string, ls *Lease) (Entry, error) {
	e, _, err := l.begin(ctx, key, ls.token)
	return e, err
}

// NewToken is newToken.
var NewToken = newToken
