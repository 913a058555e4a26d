package ledger

import "context"

// ResendBegin runs the begin script again with ls's token, as go-redis does
// when a reply was lost.
func ResendBegin(ctx context.Context, l *Ledger, key string, ls *Lease) (Entry, error) {
	res, err := beginScript.Run(ctx, l.rdb, []string{entryKey(key), leaseKey(key)},
		ls.token, l.lease.Milliseconds(), l.ttl.Milliseconds()).Result()
	if err != nil {
		return Entry{}, err
	}
	prev, _ := res.(string)
	return decode(prev), nil
}

// NewToken is newToken.
var NewToken = newToken
