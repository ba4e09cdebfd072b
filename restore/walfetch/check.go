package walfetch

import (
	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
)

// CheckSegment reports, as repo.ErrIntegrity, data that is not segment f of
// r's cluster: a wrong size, an unreadable long page header, another
// cluster's system identifier, or a page address that does not match the
// name, or pages whose timelines the name and history (see
// pgwal.CheckPages) cannot explain. It is the check Get applies to every
// segment and .partial file it returns, exposed for callers (verify) that
// read the objects themselves. history may be nil (older timelines are then
// not judged).
func CheckSegment(r *repo.Repository, f pgwal.FileName, data []byte, history func() ([]pgwal.HistoryEntry, bool, error)) error {
	return checkSegment(r, f, data, history)
}
