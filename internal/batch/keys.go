package batch

// Redis keys (see the package documentation for the layout).

func infoKey(id string) string   { return "meetops:b:{" + id + "}" }
func statesKey(id string) string { return "meetops:b:{" + id + "}:s" }
func indexKey(id string) string  { return "meetops:b:{" + id + "}:i" }

// MemberIndexKey is the set of the batches key belongs to. It carries key
// as hash tag, like the key's ledger entry, so the ledger's finish script
// can read it (ledger.Options.Subscribers).
func MemberIndexKey(key string) string { return "meetops:kb:{" + key + "}" }

const (
	// listKey orders every batch by creation time.
	listKey = "meetops:{batches}:index"
	// callbacksKey holds the batches whose completions have callbacks to
	// deliver, by creation time.
	callbacksKey = "meetops:{batches}:callbacks"
)

// Fields of the batch hash.
const (
	fLabel         = "label"
	fOrigin        = "origin"
	fCreatedAt     = "created_at"
	fCallbackURL   = "callback_url"
	fSealed        = "sealed"
	fTotal         = "total"
	fPending       = "pending"
	fSucceeded     = "succeeded"
	fAlreadyDone   = "already_done"
	fDead          = "dead"
	fCompletions   = "completions"
	fCompletedAt   = "completed_at"
	fCallbacksSent = "callbacks_sent"
)
