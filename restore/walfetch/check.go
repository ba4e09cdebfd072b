package walfetch

import (
	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
)

// CheckSegment reports, as repo.ErrIntegrity, data that is not segment f of
// r's cluster: a wrong size, an unreadable long page header, another
// cluster's system identifier, or a page address that does not match the
// name. It is the check Get applies to every segment and .partial file it
// returns, exposed for callers (verify) that read the objects themselves.
func CheckSegment(r *repo.Repository, f pgwal.FileName, data []byte) error {
	return checkSegment(r, f, data)
}
