package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"sort"
	"strings"
	"time"

	"github.com/walvault/walvault/storage"
)

// AuditPrefix holds the audit trail: one object per change to the
// repository, never rewritten.
const AuditPrefix = "audit/"

// auditTimeFormat sorts lexically in time order.
const auditTimeFormat = "20060102T150405.000000000Z"

// Actor is who made a change: the host, the operating-system user and the
// process, and the walvault version.
type Actor struct {
	Host    string `json:"host,omitempty"`
	User    string `json:"user,omitempty"`
	PID     int    `json:"pid,omitempty"`
	Version string `json:"walvault_version,omitempty"`
}

// CurrentActor describes this process.
func CurrentActor(version string) Actor {
	a := Actor{PID: os.Getpid(), Version: version}
	a.Host, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		a.User = u.Username
	}
	return a
}

// AuditRecord is one entry of the audit trail.
type AuditRecord struct {
	Time time.Time `json:"time"`
	Actor
	// Command is the walvault command that made the change: init,
	// backup, expire, keep, rekey, …
	Command string `json:"command"`
	// Action says what changed, in one line.
	Action string `json:"action"`
	// Details lists the objects or settings changed, one per line.
	Details []string `json:"details,omitempty"`
	// Key is the record's object key (filled when read).
	Key string `json:"-"`
}

// AppendAudit stores rec (its Time set to now if zero) as a new object of
// the audit trail. It never replaces a record.
func (r *Repository) AppendAudit(ctx context.Context, rec AuditRecord) error {
	if rec.Time.IsZero() {
		rec.Time = time.Now()
	}
	rec.Time = rec.Time.UTC()
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	key := AuditPrefix + rec.Time.Format(auditTimeFormat) + "-" + randomHex(4)
	if _, err := r.Put(ctx, key, data, storage.PutOptions{IfAbsent: true}); err != nil {
		return fmt.Errorf("append audit record: %w", err)
	}
	return nil
}

// AuditRecords reads the audit trail from since on (zero: all of it),
// oldest first. It needs an identity: records are sealed like every
// object.
func (r *Repository) AuditRecords(ctx context.Context, since time.Time) ([]AuditRecord, error) {
	var keys []string
	err := r.store.List(ctx, AuditPrefix, func(oi storage.ObjectInfo) error {
		name := strings.TrimPrefix(oi.Key, AuditPrefix)
		ts, _, ok := strings.Cut(name, "-")
		if !ok {
			return nil
		}
		t, err := time.Parse(auditTimeFormat, ts)
		if err != nil || (!since.IsZero() && t.Before(since)) {
			return nil
		}
		keys = append(keys, oi.Key)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list audit trail: %w", err)
	}
	out := make([]AuditRecord, 0, len(keys))
	for _, k := range keys {
		data, _, err := r.Get(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("read audit record: %w", err)
		}
		var rec AuditRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, fmt.Errorf("%w: audit record %s: %v", ErrIntegrity, k, err)
		}
		// The name carries the record's time: a record replayed under
		// another time is refused in every format (format 2 also binds
		// the whole name by its signature).
		if ts, _, _ := strings.Cut(strings.TrimPrefix(k, AuditPrefix), "-"); ts != rec.Time.UTC().Format(auditTimeFormat) {
			return nil, fmt.Errorf("%w: audit record %s was written at %s, not at the time its name says (copied from another record?)", ErrIntegrity, k, rec.Time.UTC().Format(time.RFC3339Nano))
		}
		rec.Key = k
		out = append(out, rec)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
