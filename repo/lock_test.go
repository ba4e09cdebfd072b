package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walvault/walvault/storage"
)

func lockKeys(t *testing.T, st storage.Store) []string {
	t.Helper()
	return storedKeys(t, st, LockPrefix)
}

func TestLockConflicts(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		held, want LockKind
		conflict   bool
	}{
		{LockShared, LockShared, false},
		{LockShared, LockExclusive, true},
		{LockExclusive, LockShared, true},
		{LockExclusive, LockExclusive, true},
	} {
		r, st, _ := newTestRepo(t, EncryptionAge)
		first, err := r.Lock(ctx, tc.held, "backup", LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		second, err := r.Lock(ctx, tc.want, "expire", LockOptions{})
		if tc.conflict {
			if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "backup holds "+article(tc.held)) {
				t.Errorf("%s then %s: err = %v, want ErrLocked naming the holder", tc.held, tc.want, err)
			}
			if n := len(lockKeys(t, st)); n != 1 {
				t.Errorf("%s then %s: %d lock objects after the refusal, want 1", tc.held, tc.want, n)
			}
		} else {
			if err != nil {
				t.Errorf("%s then %s: %v", tc.held, tc.want, err)
			} else if err := second.Release(ctx); err != nil {
				t.Error(err)
			}
		}
		if err := first.Release(ctx); err != nil {
			t.Error(err)
		}
		if keys := lockKeys(t, st); len(keys) != 0 {
			t.Errorf("lock objects left after release: %v", keys)
		}
	}
}

// A holder that died leaves its object; once the lease has passed it no
// longer blocks anyone, and it is removed.
func TestLockExpiresWhenHolderDies(t *testing.T) {
	ctx := context.Background()
	r, st, _ := newTestRepo(t, EncryptionAge)
	now := time.Now()
	clock := func() time.Time { return now }
	dead, err := r.Lock(ctx, LockExclusive, "expire", LockOptions{Now: clock, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	close(dead.stop) // the process is killed: no renewal, no release
	<-dead.done
	deadKey := lockKeys(t, st)[0]

	if _, err := r.Lock(ctx, LockShared, "backup", LockOptions{Now: clock}); !errors.Is(err, ErrLocked) {
		t.Fatalf("inside the lease: %v, want ErrLocked", err)
	}
	later := func() time.Time { return now.Add(61 * time.Second) }
	l, err := r.Lock(ctx, LockShared, "backup", LockOptions{Now: later})
	if err != nil {
		t.Fatalf("after the lease: %v", err)
	}
	for _, k := range lockKeys(t, st) {
		if k == deadKey {
			t.Errorf("expired lock %s not removed", k)
		}
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestLockRenewsAndWaits(t *testing.T) {
	ctx := context.Background()
	r, st, _ := newTestRepo(t, EncryptionAge)
	lease := 2 * time.Second // renewed every 0.5 s; expiry has 1 s resolution
	l, err := r.Lock(ctx, LockExclusive, "expire", LockOptions{Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	first := lockKeys(t, st)
	time.Sleep(3 * lease / 2)
	if err := l.Valid(); err != nil {
		t.Fatalf("after 1.5 leases: %v", err)
	}
	now := lockKeys(t, st)
	if len(now) != 1 || now[0] == first[0] {
		t.Errorf("lock objects %v after renewal (first %v), want one new one", now, first)
	}

	var wg sync.WaitGroup
	wg.Go(func() {
		time.Sleep(time.Second)
		l.Release(ctx)
	})
	start := time.Now()
	w, err := r.Lock(ctx, LockShared, "backup", LockOptions{Wait: 10 * time.Second})
	if err != nil {
		t.Fatalf("waiting for the release: %v", err)
	}
	if time.Since(start) < 500*time.Millisecond {
		t.Error("took the lock while the exclusive one was held")
	}
	wg.Wait()
	w.Release(ctx)
}

func TestParseLockKey(t *testing.T) {
	good := lockKey(LockShared, "backup", time.Unix(1800000000, 0), "0123abcd")
	li, err := ParseLockKey(good)
	if err != nil || li.Kind != LockShared || li.Command != "backup" || li.Expires.Unix() != 1800000000 || li.ID != "0123abcd" {
		t.Errorf("ParseLockKey(%q) = %+v, %v", good, li, err)
	}
	for _, bad := range []string{"locks/x", "locks/shared.backup.0.id", "locks/other.backup.1.id", "locks/shared.Backup.1.id", "locks/shared.backup.1.id.x", "wal/shared.backup.1.id"} {
		if _, err := ParseLockKey(bad); err == nil {
			t.Errorf("ParseLockKey(%q) accepted", bad)
		}
	}
}

func FuzzParseLockKey(f *testing.F) {
	f.Add("locks/exclusive.expire.1800000000.00ff")
	f.Fuzz(func(t *testing.T, key string) {
		li, err := ParseLockKey(key)
		if err != nil {
			return
		}
		if again := lockKey(li.Kind, li.Command, li.Expires, li.ID); again != key {
			// Leading zeros or a plus sign in the expiry do not round-trip;
			// the parsed value must still be sane.
			if li.Expires.Unix() <= 0 {
				t.Errorf("%q parsed to a non-positive expiry", key)
			}
		}
	})
}

func TestAuditTrail(t *testing.T) {
	ctx := context.Background()
	r, st, _ := newTestRepo(t, EncryptionAge)
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for i, cmd := range []string{"backup", "expire", "keep"} {
		if err := r.AppendAudit(ctx, AuditRecord{Time: t0.Add(time.Duration(i) * time.Minute), Actor: Actor{Host: "odoo1", User: "postgres"}, Command: cmd, Action: "did " + cmd}); err != nil {
			t.Fatal(err)
		}
	}
	// Sealed like every object: the host name is not in the clear.
	for _, k := range storedKeys(t, st, AuditPrefix) {
		if strings.Contains(string(raw(t, st, k)), "odoo1") {
			t.Errorf("%s holds plaintext", k)
		}
	}
	recs, err := r.AuditRecords(ctx, time.Time{})
	if err != nil || len(recs) != 3 || recs[0].Command != "backup" || recs[2].Command != "keep" || recs[1].Host != "odoo1" {
		t.Fatalf("AuditRecords = %+v, %v", recs, err)
	}
	recs, err = r.AuditRecords(ctx, t0.Add(30*time.Second))
	if err != nil || len(recs) != 2 || recs[0].Command != "expire" {
		t.Errorf("since: %+v, %v", recs, err)
	}
}

func TestBackupNotes(t *testing.T) {
	ctx := context.Background()
	r, _, _ := newTestRepo(t, EncryptionAge)
	id := "20261124T100000Z"
	yes, no := true, false
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for i, n := range []BackupNote{{Keep: &yes, Note: "before upgrade"}, {Note: "checked"}, {Keep: &no}, {Keep: &yes}} {
		n.Time = t0.Add(time.Duration(i) * time.Second)
		if err := r.AddBackupNote(ctx, id, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.AddBackupNote(ctx, "latest", BackupNote{}); err == nil {
		t.Error("note on an invalid id accepted")
	}
	marks, err := r.AllBackupMarks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := marks[id]
	if !m.Keep || len(m.Notes) != 4 || m.Notes[0].Note != "before upgrade" {
		t.Errorf("marks = %+v", m)
	}
	// Notes do not make a backup complete.
	if ids, err := r.BackupIDs(ctx); err != nil || len(ids) != 0 {
		t.Errorf("BackupIDs = %v, %v; notes alone are not a backup", ids, err)
	}
}

// A lock left by a process of this host that has died is dead at once; one
// with another host's tag waits for its lease.
func TestLockOfDeadLocalProcess(t *testing.T) {
	ctx := context.Background()
	r, st, _ := newTestRepo(t, EncryptionAge)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run true:", err)
	}
	deadPID := cmd.Process.Pid
	if localTag() == "x" {
		t.Skip("no boot id or PID namespace to tell local processes by")
	}
	expires := time.Now().Add(DefaultLockLease) // within LockHorizon: counts
	remote := lockKey(LockExclusive, "expire", expires, fmt.Sprintf("%s-%d-00000000", "0badc0de", deadPID))
	if _, err := r.Put(ctx, remote, []byte("x"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lock(ctx, LockShared, "backup", LockOptions{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("lock of another host's process: %v, want ErrLocked until its lease ends", err)
	}
	if err := st.Delete(ctx, remote); err != nil {
		t.Fatal(err)
	}

	local := lockKey(LockExclusive, "expire", expires, fmt.Sprintf("%s-%d-00000000", localTag(), deadPID))
	if _, err := r.Put(ctx, local, []byte("x"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	l, err := r.Lock(ctx, LockShared, "backup", LockOptions{})
	if err != nil {
		t.Fatalf("lock of a dead local process still blocks: %v", err)
	}
	for _, k := range lockKeys(t, st) {
		if k == local {
			t.Error("dead process's lock not removed")
		}
	}
	l.Release(ctx)

	// A live local process (this one's parent stands in) keeps its lock.
	live := lockKey(LockExclusive, "expire", expires, fmt.Sprintf("%s-%d-00000000", localTag(), os.Getppid()))
	if _, err := r.Put(ctx, live, []byte("x"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lock(ctx, LockShared, "backup", LockOptions{}); !errors.Is(err, ErrLocked) {
		t.Errorf("lock of a live local process: %v, want ErrLocked", err)
	}
}

// A lock planted by someone who can write the bucket but holds no key
// (issue 14): an expiry in the year 5138, exclusive, must not block expire
// or backup for ever. It is ignored and reported, not removed.
func TestLockIgnoresImplausibleExpiry(t *testing.T) {
	ctx := context.Background()
	r, st, _ := newTestRepo(t, EncryptionAge)
	now := time.Now()
	clock := func() time.Time { return now }
	plant := func(key string) {
		t.Helper()
		if err := st.Put(ctx, key, strings.NewReader(""), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	year5138 := time.Date(5138, 1, 1, 0, 0, 0, 0, time.UTC)
	planted := []string{
		lockKey(LockExclusive, "expire", year5138, "0badc0de-1-00000000"),
		lockKey(LockShared, "backup", now.Add(LockHorizon+time.Minute), "0badc0de-2-00000000"),
		LockPrefix + "exclusive.expire.99999999999999999999.x", // expiry overflows: malformed
		LockPrefix + "garbage",
	}
	for _, k := range planted {
		plant(k)
	}
	for _, kind := range []LockKind{LockExclusive, LockShared} {
		l, err := r.Lock(ctx, kind, "expire", LockOptions{Now: clock})
		if err != nil {
			t.Fatalf("%s lock with planted locks: %v", kind, err)
		}
		ignored := map[string]string{}
		for _, ig := range l.Ignored() {
			ignored[ig.Key] = ig.Describe()
		}
		for _, k := range planted {
			if !strings.Contains(ignored[k], k) {
				t.Errorf("%s lock: planted %s not reported (%q)", kind, k, ignored[k])
			}
		}
		if w := ignored[planted[0]]; !strings.Contains(w, "5138-01-01T00:00:00Z") || !strings.Contains(w, "delete the object") {
			t.Errorf("warning does not give the expiry and what to do: %s", w)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if keys := lockKeys(t, st); len(keys) != len(planted) {
		t.Errorf("lock objects after: %v, want the planted ones kept as evidence", keys)
	}

	// Within the horizon a lock counts, whoever wrote it: a host whose
	// clock runs a little ahead holds a real lock.
	near := lockKey(LockExclusive, "expire", now.Add(LockHorizon-time.Minute), "0badc0de-3-00000000")
	plant(near)
	if _, err := r.Lock(ctx, LockShared, "backup", LockOptions{Now: clock}); !errors.Is(err, ErrLocked) {
		t.Errorf("a lock expiring within %s: %v, want ErrLocked", LockHorizon, err)
	}
	// Once that far behind us, it is an expired lease like any other.
	later := func() time.Time { return now.Add(LockHorizon) }
	l, err := r.Lock(ctx, LockShared, "backup", LockOptions{Now: later})
	if err != nil {
		t.Fatalf("after its expiry: %v", err)
	}
	l.Release(ctx)
}

// The leases Lock takes stay within what others accept.
func TestLockRefusesLongLease(t *testing.T) {
	r, _, _ := newTestRepo(t, EncryptionAge)
	if _, err := r.Lock(context.Background(), LockShared, "backup", LockOptions{Lease: MaxLockLease + time.Second}); err == nil {
		t.Fatal("a lease longer than MaxLockLease was accepted")
	}
}

func TestLockInfoImplausible(t *testing.T) {
	now := time.Unix(1800000000, 0)
	for _, tc := range []struct {
		exp  time.Time
		want bool
	}{
		{now.Add(-time.Hour), false},
		{now.Add(DefaultLockLease), false},
		{now.Add(LockHorizon), false},
		{now.Add(LockHorizon + time.Second), true},
		{time.Unix(99999999999, 0), true},
	} {
		if got := (LockInfo{Expires: tc.exp}).Implausible(now); got != tc.want {
			t.Errorf("expiry %s: implausible = %v, want %v", tc.exp, got, tc.want)
		}
	}
}
