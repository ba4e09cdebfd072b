package repo

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/storage"
)

// TestChange: a change runs under its lock, a conflicting lock refuses it
// before fn runs, and what it did is recorded even when it failed
// part-way; the lock is gone afterwards.
func TestChange(t *testing.T) {
	ctx := context.Background()
	r, st, _ := newTestRepo(t, EncryptionAge)
	actor := Actor{Host: "h", User: "u", PID: 1, Version: "test"}
	o := ChangeOptions{Actor: actor}

	boom := errors.New("boom")
	err := r.Change(ctx, LockExclusive, "expire", o, func(l *Lock) (Audit, error) {
		if err := l.Valid(); err != nil {
			t.Errorf("lock not valid inside the change: %v", err)
		}
		if n := len(lockKeys(t, st)); n != 1 {
			t.Errorf("%d lock objects during the change, want 1", n)
		}
		return Audit{Action: "removed 1 of 2", Details: []string{"backup x"}}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if n := len(lockKeys(t, st)); n != 0 {
		t.Errorf("%d lock objects after the change", n)
	}
	recs, err := r.AuditRecords(ctx, time.Time{})
	if err != nil || len(recs) != 1 || recs[0].Action != "removed 1 of 2" || recs[0].Command != "expire" || recs[0].Actor != actor {
		t.Fatalf("audit after a failed change: %+v, %v", recs, err)
	}

	held, err := r.Lock(ctx, LockShared, "backup", LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	err = r.Change(ctx, LockExclusive, "rekey", o, func(*Lock) (Audit, error) { ran = true; return Audit{Action: "x"}, nil })
	if !errors.Is(err, ErrLocked) || ran {
		t.Errorf("against a held shared lock: err %v, ran %v", err, ran)
	}
	// Shared changes overlap.
	if err := r.Change(ctx, LockShared, "filestore-push", o, func(*Lock) (Audit, error) { return Audit{}, nil }); err != nil {
		t.Errorf("shared beside shared: %v", err)
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if recs, _ := r.AuditRecords(ctx, time.Time{}); len(recs) != 1 {
		t.Errorf("refused and empty changes recorded: %+v", recs)
	}
}

// A change goes ahead past a planted lock and says so in its log.
func TestChangeReportsIgnoredLock(t *testing.T) {
	ctx := context.Background()
	r, st, _ := newTestRepo(t, EncryptionAge)
	planted := lockKey(LockExclusive, "expire", time.Date(5138, 1, 1, 0, 0, 0, 0, time.UTC), "0badc0de-1-00000000")
	if err := st.Put(ctx, planted, strings.NewReader(""), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	o := ChangeOptions{Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	ran := false
	if err := r.Change(ctx, LockExclusive, "expire", o, func(*Lock) (Audit, error) { ran = true; return Audit{}, nil }); err != nil || !ran {
		t.Fatalf("change with a planted lock: ran %v, %v", ran, err)
	}
	if !strings.Contains(logged.String(), "level=WARN") || !strings.Contains(logged.String(), planted) {
		t.Errorf("the ignored lock was not logged as a warning:\n%s", logged.String())
	}
}
