package main

import (
	"errors"
	"fmt"

	"github.com/walvault/walvault/archive/basebackup"
	"github.com/walvault/walvault/archive/replconn"
	"github.com/walvault/walvault/archive/stream"
	"github.com/walvault/walvault/archive/walpush"
	"github.com/walvault/walvault/archive/walpush/walclient"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/restore/dbcopy"
	"github.com/walvault/walvault/restore/drill"
	"github.com/walvault/walvault/restore/filestorefetch"
	"github.com/walvault/walvault/restore/odoo"
	"github.com/walvault/walvault/restore/pitr"
	"github.com/walvault/walvault/storage"
)

// Exit codes. They are a documented contract (docs/COMMANDS.md, "Exit codes").
const (
	exitOK         = 0
	exitFailure    = 1 // any other failure; wal-fetch: the file is not in the repository
	exitUsage      = 2
	exitConfig     = 3
	exitRepository = 4 // not initialized, other cluster, newer format
	exitConflict   = 5 // different content under an archived name; restore into a non-empty directory, or a path walvault refuses to write through
	exitIntegrity  = 6 // damaged object, wrong key
	exitStorage    = 7 // storage unreachable after retries
	exitTimeout    = 8 // the WAL a backup needs did not arrive
	exitPostgres   = 9
	exitTarget     = 10 // recovery target outside the recoverable window
	exitLocked     = 11 // another command holds a conflicting repository lock
	exitDrill      = 12 // walvault drill: a check failed
	exitIncomplete = 13 // filestore restore: referenced files the repository does not hold
	exitFetchAbort = 255
)

// usageError is bad command-line input.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// configError is a missing or invalid setting.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

func configf(format string, a ...any) error { return &configError{err: fmt.Errorf(format, a...)} }

// exitCode maps an error to the process exit status: the one place where
// errors become codes.
func exitCode(err error) int {
	var ue *usageError
	var ce *configError
	var cs *checkStatusError
	var re *walclient.RemoteError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &re):
		return re.Code // computed by the wal-server with this same function
	case errors.As(err, &cs):
		return cs.status.ExitCode() // Nagios codes: see the README
	case errors.As(err, &ue), errors.Is(err, dbcopy.ErrPasswordInArgs), errors.Is(err, pitr.ErrInvalidTarget):
		return exitUsage
	case errors.As(err, &ce), errors.Is(err, repo.ErrNoIdentity), errors.Is(err, repo.ErrNoRecipients), errors.Is(err, repo.ErrNoWriterKey),
		errors.Is(err, stream.ErrSlotMissing), errors.Is(err, stream.ErrSpool), errors.Is(err, drill.ErrNoServer),
		errors.Is(err, odoo.ErrNotOdoo), errors.Is(err, odoo.ErrRules), errors.Is(err, dbcopy.ErrNoClient):
		return exitConfig
	case errors.Is(err, repo.ErrNotInitialized), errors.Is(err, repo.ErrUnsupportedFormat), errors.Is(err, repo.ErrClusterMismatch),
		errors.Is(err, pitr.ErrNoBackup):
		return exitRepository
	case errors.Is(err, walpush.ErrConflict), errors.Is(err, pitr.ErrDirNotEmpty), errors.Is(err, pitr.ErrTablespaceLocation), errors.Is(err, filestorefetch.ErrUnsafePath), errors.Is(err, pitr.ErrInUse), errors.Is(err, errStillRecovering), errors.Is(err, odoo.ErrNotRestoredCopy),
		errors.Is(err, dbcopy.ErrExists), errors.Is(err, pitr.ErrDeltaUnsupported):
		return exitConflict
	case errors.Is(err, repo.ErrIntegrity), errors.Is(err, repo.ErrWrongKey):
		return exitIntegrity
	case errors.Is(err, basebackup.ErrWALTimeout):
		return exitTimeout
	case errors.Is(err, pitr.ErrTargetOutsideWindow):
		return exitTarget
	case errors.Is(err, repo.ErrLocked):
		return exitLocked
	case errors.Is(err, replconn.ErrConnect), errors.Is(err, dbcopy.ErrConnect):
		return exitPostgres
	case storage.IsTransient(err):
		return exitStorage
	case errors.Is(err, drill.ErrFailed):
		return exitDrill
	case errors.Is(err, filestorefetch.ErrIncomplete):
		return exitIncomplete
	}
	return exitFailure
}
