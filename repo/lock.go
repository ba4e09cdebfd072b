package repo

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/walvault/walvault/storage"
)

// LockPrefix holds the repository's lock objects.
const LockPrefix = "locks/"

// ErrLocked: another process holds a lock that conflicts with the one asked
// for. The error text names the holder and when its lease runs out.
var ErrLocked = errors.New("repository is locked")

// LockKind says what a lock excludes. Shared locks (backup) coexist with
// each other; an exclusive lock (expire, rekey) coexists with nothing.
type LockKind string

const (
	LockShared    LockKind = "shared"
	LockExclusive LockKind = "exclusive"
)

// A lock is a lease: an object locks/<kind>.<command>.<expiry>.<id> whose
// name says what it excludes and until when (Unix seconds). Its holder
// renews it well before then by writing a new object and deleting the old
// one; a holder that dies stops renewing, and its lock is ignored (and
// removed) once the expiry has passed, so a crash can never wedge the
// repository for longer than one lease. The name carries everything
// another process needs, so a host with only recipients (no identity) can
// take and check locks; the object's body, sealed like every object, says
// which host, user and process holds it.
//
// Taking a lock: write our object, then list the others. If a live lock
// conflicts, remove ours and fail (or wait and try again). Two processes
// racing both see each other and both back off; neither proceeds alone
// with a conflicting holder.

// A lock object is also a message from whoever can write the repository,
// which may be an attacker holding no key (FORMAT.md, SECURITY.md): one
// planted lock with an expiry in the year 5138 would otherwise block every
// expire (or, exclusive, every backup) for ever. No walvault writes an
// expiry further ahead than its lease, at most MaxLockLease, on a clock
// that should be within LockClockSkew of ours. A lock expiring beyond
// now + LockHorizon is therefore ignored for conflicts and reported
// (Lock.Ignored, walvault check), as are objects under locks/ whose names
// are not lock keys. It is not removed: it is evidence, and the operator
// decides.

// DefaultLockLease is how long a lock lives without renewal.
const DefaultLockLease = 2 * time.Minute

// MaxLockLease is the longest lease Lock accepts.
const MaxLockLease = 10 * time.Minute

// LockClockSkew is how far another host's clock may run ahead of this
// one's before its locks are ignored. Hosts sharing a repository must
// keep their clocks closer than this (NTP); a host whose clock is behind
// by more than LockHorizon minus the others' lease ignores their locks.
const LockClockSkew = 5 * time.Minute

// LockHorizon bounds a plausible lock expiry: now + LockHorizon.
const LockHorizon = MaxLockLease + LockClockSkew

// LockOptions modify Lock.
type LockOptions struct {
	// Lease is the lifetime of one lock object (default DefaultLockLease,
	// at most MaxLockLease); the holder renews it every Lease/4.
	Lease time.Duration
	// Wait is how long to keep trying while a conflicting lock is held;
	// 0 fails at once.
	Wait time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Holder describes the process for the lock body and messages.
	Holder Actor
}

// LockInfo describes a lock object.
type LockInfo struct {
	Key     string
	Kind    LockKind
	Command string
	Expires time.Time
	ID      string
}

// Implausible reports whether the lock expires further ahead of now than
// any walvault writes (LockHorizon): it is ignored for conflicts.
func (li LockInfo) Implausible(now time.Time) bool {
	return li.Expires.After(now.Add(LockHorizon))
}

// IgnoredLock is an object under locks/ that Lock did not let block it.
type IgnoredLock struct {
	Key string
	// Reason says why, for the operator.
	Reason string
}

// Describe is the warning to show an operator for l.
func (l IgnoredLock) Describe() string {
	return fmt.Sprintf("ignored the repository lock object %s: %s; walvault never writes one like it, so someone else can write the repository (or a host's clock is far off: check NTP); find out who, then delete the object", l.Key, l.Reason)
}

// JudgeLock says why a listed lock is ignored, or "" when it counts.
func JudgeLock(li LockInfo, now time.Time) string {
	if li.Implausible(now) {
		return fmt.Sprintf("its expiry %s is more than %s ahead of this host's clock (%s), beyond any lease (at most %s) plus clock difference (%s)",
			li.Expires.Format(time.RFC3339), LockHorizon, now.UTC().Format(time.RFC3339), MaxLockLease, LockClockSkew)
	}
	return ""
}

// JudgeLockObject is JudgeLock plus, in a format-2 repository, the lock
// object's signature: a lock no trusted writer signed (planted by whoever
// can write the bucket, or copied from another name) is ignored too. It
// reads the object's header, so callers judge only the locks that would
// otherwise count. A lock released meanwhile returns an error for which
// storage.IsNotExist is true. Any other error says the signature could not
// be checked at all (the store failed, or this host trusts no root): the
// lock then counts, as the safe choice for the caller.
func (r *Repository) JudgeLockObject(ctx context.Context, li LockInfo, now time.Time) (string, error) {
	if why := JudgeLock(li, now); why != "" || !r.Signed() {
		return why, nil
	}
	_, err := r.Header(ctx, li.Key)
	switch {
	case err == nil:
		return "", nil
	case storage.IsNotExist(err):
		return "", err
	case errors.Is(err, ErrIntegrity) && !errors.Is(err, ErrNoIdentity):
		return "it is not signed by a writer of this repository (" + err.Error() + ")", nil
	}
	return "", err
}

// ParseLockKey parses a lock object's key.
func ParseLockKey(key string) (LockInfo, error) {
	rest, ok := strings.CutPrefix(key, LockPrefix)
	if !ok {
		return LockInfo{}, fmt.Errorf("lock key %q is not under %s", key, LockPrefix)
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 {
		return LockInfo{}, fmt.Errorf("lock key %q is not kind.command.expiry.id", key)
	}
	kind := LockKind(parts[0])
	if kind != LockShared && kind != LockExclusive {
		return LockInfo{}, fmt.Errorf("lock key %q: unknown kind %q", key, parts[0])
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || exp <= 0 {
		return LockInfo{}, fmt.Errorf("lock key %q: bad expiry %q", key, parts[2])
	}
	if !validLockWord(parts[1]) || !validLockWord(parts[3]) {
		return LockInfo{}, fmt.Errorf("lock key %q: bad command or id", key)
	}
	return LockInfo{Key: key, Kind: kind, Command: parts[1], Expires: time.Unix(exp, 0).UTC(), ID: parts[3]}, nil
}

func validLockWord(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func lockKey(kind LockKind, command string, expires time.Time, id string) string {
	return fmt.Sprintf("%s%s.%s.%d.%s", LockPrefix, kind, command, expires.Unix(), id)
}

func article(k LockKind) string {
	if k == LockExclusive {
		return "an exclusive"
	}
	return "a shared"
}

// A lock's id is <tag>-<pid>-<random>. The tag is a hash of the host name,
// the kernel's boot id and the PID namespace, so it matches exactly the
// processes whose PIDs this process can see: a lock with our tag whose
// process is gone (killed, crashed) is dead at once, without waiting for
// its lease. Locks from other hosts or containers wait for their lease.
var localTag = sync.OnceValue(func() string {
	host, _ := os.Hostname()
	boot, err1 := os.ReadFile("/proc/sys/kernel/random/boot_id")
	pidns, err2 := os.Readlink("/proc/self/ns/pid")
	if err1 != nil || err2 != nil || host == "" {
		return "x" // cannot tell: never matches a tag of 8 hex digits
	}
	sum := sha256.Sum256([]byte(host + "\x00" + strings.TrimSpace(string(boot)) + "\x00" + pidns))
	return hex.EncodeToString(sum[:4])
})

// deadLocalHolder reports whether id names a process of this host and PID
// namespace that no longer runs.
func deadLocalHolder(id string) bool {
	tag, rest, ok := strings.Cut(id, "-")
	if !ok || tag != localTag() || tag == "x" {
		return false
	}
	pidText, _, ok := strings.Cut(rest, "-")
	if !ok {
		return false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	err = syscall.Kill(pid, 0)
	return errors.Is(err, syscall.ESRCH)
}

// conflicts reports whether a lock of kind a and one of kind b exclude
// each other.
func conflicts(a, b LockKind) bool { return a == LockExclusive || b == LockExclusive }

// Lock is a held lock. Release it when done; until then it renews itself.
type Lock struct {
	r       *Repository
	kind    LockKind
	command string
	id      string
	lease   time.Duration
	now     func() time.Time
	body    []byte

	// ignored are the lock objects the last attempt did not let block it.
	ignored []IgnoredLock

	mu      sync.Mutex
	key     string
	expires time.Time
	lost    error
	stop    chan struct{}
	done    chan struct{}
}

// Lock takes a lock of the given kind for command (a lower-case word such
// as "expire"). It fails with ErrLocked when a conflicting live lock is
// held and opts.Wait has passed.
func (r *Repository) Lock(ctx context.Context, kind LockKind, command string, opts LockOptions) (*Lock, error) {
	if kind != LockShared && kind != LockExclusive {
		return nil, fmt.Errorf("lock: unknown kind %q", kind)
	}
	if !validLockWord(command) {
		return nil, fmt.Errorf("lock: invalid command name %q", command)
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLockLease
	}
	if opts.Lease > MaxLockLease {
		return nil, fmt.Errorf("lock: lease %s is longer than %s: others would ignore the lock", opts.Lease, MaxLockLease)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	idb := make([]byte, 8)
	if _, err := rand.Read(idb); err != nil {
		return nil, err
	}
	body, err := jsonMarshal(struct {
		Actor
		Kind    LockKind  `json:"kind"`
		Command string    `json:"command"`
		Taken   time.Time `json:"taken"`
	}{opts.Holder, kind, command, opts.Now().UTC()})
	if err != nil {
		return nil, err
	}
	id := fmt.Sprintf("%s-%d-%s", localTag(), os.Getpid(), hex.EncodeToString(idb))
	l := &Lock{r: r, kind: kind, command: command, id: id, lease: opts.Lease, now: opts.Now, body: body}
	deadline := opts.Now().Add(opts.Wait)
	for {
		err := l.try(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrLocked) || !opts.Now().Before(deadline) {
			return nil, err
		}
		// Back off with jitter so two racing processes do not retry in step.
		n, _ := rand.Int(rand.Reader, big.NewInt(1000))
		wait := time.Duration(500+n.Int64()) * time.Millisecond
		if left := deadline.Sub(opts.Now()); wait > left {
			wait = left
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	l.stop = make(chan struct{})
	l.done = make(chan struct{})
	go l.renew()
	return l, nil
}

// try writes our lock object and checks the others. On a conflict it
// removes ours and returns ErrLocked naming the holder.
func (l *Lock) try(ctx context.Context) error {
	expires := l.now().Add(l.lease)
	key := lockKey(l.kind, l.command, expires, l.id)
	if _, err := l.r.Put(ctx, key, l.body, storage.PutOptions{IfAbsent: true, Temporary: true}); err != nil {
		return fmt.Errorf("take %s lock: %w", l.kind, err)
	}
	held, malformed, err := l.r.ListLocks(ctx)
	if err != nil {
		l.r.store.Delete(context.WithoutCancel(ctx), key)
		return err
	}
	now := l.now()
	l.ignored = l.ignored[:0]
	for _, k := range malformed {
		l.ignored = append(l.ignored, IgnoredLock{Key: k, Reason: "its name is not " + LockPrefix + "<kind>.<command>.<expiry>.<id>"})
	}
	for _, h := range held {
		if h.ID == l.id {
			continue
		}
		if !h.Expires.After(now) || deadLocalHolder(h.ID) {
			// A dead holder's lease: remove it (another process may
			// race us to it; that is harmless).
			l.r.store.Delete(ctx, h.Key)
			continue
		}
		if !conflicts(l.kind, h.Kind) {
			if why := JudgeLock(h, now); why != "" {
				l.ignored = append(l.ignored, IgnoredLock{Key: h.Key, Reason: why})
			}
			continue
		}
		why, jerr := l.r.JudgeLockObject(ctx, h, now)
		if why != "" {
			l.ignored = append(l.ignored, IgnoredLock{Key: h.Key, Reason: why})
			continue
		}
		if storage.IsNotExist(jerr) {
			continue // released meanwhile
		}
		l.r.store.Delete(context.WithoutCancel(ctx), key)
		unchecked := ""
		if jerr != nil {
			unchecked = fmt.Sprintf(" (its signature could not be checked, so it counts: %v)", jerr)
		}
		return fmt.Errorf("%w: %s holds %s lock (%s) until %s%s; wait for it to finish, or if that process is gone, its lock expires by itself at that time",
			ErrLocked, h.Command, article(h.Kind), h.Key, h.Expires.Format(time.RFC3339), unchecked)
	}
	l.mu.Lock()
	l.key, l.expires = key, expires
	l.mu.Unlock()
	return nil
}

// renew replaces the lock object every lease/4 until Release.
func (l *Lock) renew() {
	defer close(l.done)
	t := time.NewTicker(l.lease / 4)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		old, oldExp := l.key, l.expires
		l.mu.Unlock()
		expires := l.now().Add(l.lease)
		key := lockKey(l.kind, l.command, expires, l.id)
		ctx, cancel := context.WithTimeout(context.Background(), l.lease/4)
		_, err := l.r.Put(ctx, key, l.body, storage.PutOptions{IfAbsent: true, Temporary: true})
		if err == nil && key != old {
			l.r.store.Delete(ctx, old)
		}
		cancel()
		l.mu.Lock()
		if err == nil {
			l.key, l.expires = key, expires
		} else if !l.now().Before(oldExp) {
			l.lost = fmt.Errorf("%w: lost the %s lock: it could not be renewed before it expired: %v", ErrLocked, l.kind, err)
		}
		l.mu.Unlock()
	}
}

// Valid returns nil while the lock is held, or why it is not. Callers
// check it before each destructive step: a lock whose renewal failed past
// its expiry may already be taken by someone else.
func (l *Lock) Valid() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	if !l.now().Before(l.expires) {
		return fmt.Errorf("%w: the %s lock expired at %s before it was renewed", ErrLocked, l.kind, l.expires.Format(time.RFC3339))
	}
	return nil
}

// Ignored lists the lock objects that were not allowed to block taking l
// (see LockHorizon): callers report them.
func (l *Lock) Ignored() []IgnoredLock { return append([]IgnoredLock(nil), l.ignored...) }

// Release stops renewing and removes the lock object.
func (l *Lock) Release(ctx context.Context) error {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	key := l.key
	l.mu.Unlock()
	if err := l.r.store.Delete(ctx, key); err != nil && !storage.IsNotExist(err) {
		return fmt.Errorf("release lock: %w", err)
	}
	return nil
}

// Locks lists the lock objects, expired or not. Objects under locks/ that
// are not lock keys are left out.
func (r *Repository) Locks(ctx context.Context) ([]LockInfo, error) {
	locks, _, err := r.ListLocks(ctx)
	return locks, err
}

// ListLocks lists the lock objects, expired, implausible or not, and the
// keys of the objects under locks/ that are not lock keys.
func (r *Repository) ListLocks(ctx context.Context) (locks []LockInfo, malformed []string, err error) {
	err = r.store.List(ctx, LockPrefix, func(oi storage.ObjectInfo) error {
		if li, err := ParseLockKey(oi.Key); err == nil {
			locks = append(locks, li)
		} else {
			malformed = append(malformed, oi.Key)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list locks: %w", err)
	}
	return locks, malformed, nil
}
