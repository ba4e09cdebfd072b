package repo

import (
	"context"
	"log/slog"
	"time"
)

// Changes to the repository follow two rules wherever they are made from
// (the CLI or a Go caller): they run under the repository lock their kind
// needs, so that an expire never sees a backup or a filestore pass half
// done, and what they changed is recorded in the audit trail. Change and
// Record are those rules; the operations (basebackup.Run, expire.Run,
// rekey.Run, filestore.Push's passes, notes) call them, so no caller can
// skip either.

// ChangeOptions say who makes a change and how long it waits for the lock.
type ChangeOptions struct {
	// Actor is recorded with the lock and in the audit record (default:
	// CurrentActor with an empty version).
	Actor Actor
	// LockWait is how long to wait while a conflicting lock is held.
	LockWait time.Duration
	// Logger receives what cannot fail the change once it is done: a lock
	// object that was ignored (Lock.Ignored), a lock that could not be
	// removed (it expires by itself), an audit record that could not be
	// appended (default: discard).
	Logger *slog.Logger
}

func (o *ChangeOptions) defaults() {
	if o.Actor == (Actor{}) {
		o.Actor = CurrentActor("")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Audit is what a change records: one line, and the objects or settings
// it changed. An empty Action records nothing.
type Audit struct {
	Action  string
	Details []string
}

// Change runs fn under a lock of kind for command, then records what fn
// says it changed, even when fn failed part-way (an action it returns with
// its error is what was done before the error). fn gets the lock: call
// Valid before each write, which fails once the lock was lost.
func (r *Repository) Change(ctx context.Context, kind LockKind, command string, o ChangeOptions, fn func(*Lock) (Audit, error)) error {
	o.defaults()
	lock, err := r.Lock(ctx, kind, command, LockOptions{Wait: o.LockWait, Holder: o.Actor})
	if err != nil {
		return err
	}
	for _, ig := range lock.Ignored() {
		o.Logger.Warn(ig.Describe(), "command", command)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := lock.Release(rctx); err != nil {
			o.Logger.Warn("could not remove the repository lock; it expires by itself", "command", command, "err", err)
		}
	}()
	a, err := fn(lock)
	r.Record(ctx, command, a, o)
	return err
}

// Record appends an audit record of a change made without a lock (a note,
// the repository's creation). A failure is logged, not returned: the
// change itself is done.
func (r *Repository) Record(ctx context.Context, command string, a Audit, o ChangeOptions) {
	if a.Action == "" {
		return
	}
	o.defaults()
	rec := AuditRecord{Actor: o.Actor, Command: command, Action: a.Action, Details: a.Details}
	if err := r.AppendAudit(context.WithoutCancel(ctx), rec); err != nil {
		o.Logger.Warn("could not append the audit record", "command", command, "err", err)
	}
}
