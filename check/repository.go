package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/walvault/walvault/crypto"
	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/units"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// repositoryFacts is what check reads from the repository: the
// configuration, and listings (keys and storage times), which need no key.
type repositoryFacts struct {
	Where   string
	Err     error // opening or reading walvault.json failed
	Config  repo.Config
	repo    *repo.Repository
	ListErr error
	// Segments are the full WAL segments, in key order.
	Segments []repo.WALObject
	// NewestUpload is the latest storage time of any WAL object or
	// streamed partial.
	NewestUpload time.Time
	NewestName   string
	// Backups are the ids of complete backups, oldest first; BackupTime
	// the storage time of the newest one's manifest.
	Backups    []string
	BackupTime time.Time
	// Manifest is the newest backup's manifest when an identity could
	// read it; ManifestErr why not (nil when no identity is configured).
	Manifest    *repo.BackupManifest
	ManifestErr error
	// Locks and MalformedLocks are what is under locks/ (LockErr: why
	// they could not be listed).
	Locks          []repo.LockInfo
	MalformedLocks []string
	LockErr        error
	// UnsignedLocks are the live locks of a format-2 repository that no
	// trusted writer signed, with why (repo.JudgeLockObject).
	UnsignedLocks map[string]string
	identities    []age.Identity
	identityErr   error
	// Format 2: the writer key (writerErr: why it cannot be used), the
	// roots the identity file trusts (rootsErr), whether walvault.json
	// verifies against the roots this host trusts (configErr), and, for
	// a format-1 repository, why this host's format-2 keys make every
	// command refuse it (unsignedErr).
	writer      *crypto.WriterKey
	writerErr   error
	roots       []crypto.RootPublicKey
	rootsErr    error
	configErr   error
	unsignedErr error

	// WALConflicts are the alternate WAL copies writers stored beside
	// another object under a WAL file's name (repo.WALConflicts).
	WALConflicts []string
}

func (f *repositoryFacts) usable() bool { return f.Err == nil && f.ListErr == nil }

func gatherRepository(ctx context.Context, o Options) *repositoryFacts {
	f := &repositoryFacts{}
	if o.Store == nil {
		f.Err = o.StoreErr
		if f.Err == nil {
			f.Err = errors.New("no repository configured")
		}
		return f
	}
	f.Where = o.Store.String()
	cfg, err := repo.ReadConfig(ctx, o.Store)
	if err != nil {
		f.Err = err
		return f
	}
	f.Config = cfg
	if o.IdentityFile != "" {
		f.identities, f.identityErr = crypto.LoadIdentities(o.IdentityFile)
		// The identity file also holds the roots a reader trusts: without
		// them no object of a format-2 repository can be read.
		f.roots, f.rootsErr = crypto.LoadTrustedRoots(o.IdentityFile)
	}
	if o.WriterKeyFile != "" {
		f.writer, f.writerErr = crypto.LoadWriterKey(o.WriterKeyFile)
	}
	ropts := repo.Options{Identities: f.identities, TrustedRoots: f.roots, Writer: f.writer, AllowUnsigned: o.AllowUnsigned}
	r, err := repo.Open(ctx, o.Store, ropts)
	if err != nil && errors.Is(err, crypto.ErrUntrusted) && !cfg.Signed() {
		// A format-1 repository and a host with format-2 keys: every
		// command refuses it (judgeWriter says why); the listings below
		// need no key.
		f.unsignedErr = err
		r, err = repo.Open(ctx, o.Store, repo.Options{Identities: f.identities, AllowUnsigned: true})
	}
	if err != nil {
		f.Err = err
		return f
	}
	f.repo = r
	if cfg.Signed() {
		f.configErr = r.VerifyConfig(ctx)
	}
	wal, unknown, err := r.ListWAL(ctx)
	if err != nil {
		f.ListErr = err
		return f
	}
	f.WALConflicts = repo.WALConflicts(unknown)
	for _, w := range wal {
		if w.ModTime.After(f.NewestUpload) {
			f.NewestUpload, f.NewestName = w.ModTime, w.File.Name
		}
		if w.File.Kind == pgwal.KindSegment {
			f.Segments = append(f.Segments, w)
		}
	}
	partials, _, err := r.AllStreamPartials(ctx)
	if err != nil {
		f.ListErr = err
		return f
	}
	for _, p := range partials {
		if p.ModTime.After(f.NewestUpload) {
			f.NewestUpload, f.NewestName = p.ModTime, fmt.Sprintf("%s (streamed, %s)", p.File.Name, units.Bytes(p.Valid))
		}
	}
	f.Locks, f.MalformedLocks, f.LockErr = r.ListLocks(ctx)
	if r.Signed() {
		now := o.now()
		for _, li := range f.Locks {
			if !li.Expires.After(now) || repo.JudgeLock(li, now) != "" {
				continue
			}
			if why, err := r.JudgeLockObject(ctx, li, now); err == nil && why != "" {
				if f.UnsignedLocks == nil {
					f.UnsignedLocks = map[string]string{}
				}
				f.UnsignedLocks[li.Key] = why
			}
		}
	}
	if f.Backups, err = r.BackupIDs(ctx); err != nil {
		f.ListErr = err
		return f
	}
	if n := len(f.Backups); n > 0 {
		newest := f.Backups[n-1]
		if t, err := r.BackupStoredAt(ctx, newest); err == nil {
			f.BackupTime = t
		}
		if o.IdentityFile != "" && cfg.Encrypted() {
			if f.identityErr != nil {
				f.ManifestErr = f.identityErr
			} else {
				f.Manifest, f.ManifestErr = r.BackupManifest(ctx, newest)
			}
		}
	}
	return f
}

func judgeRepository(f *repositoryFacts, pg *postgresFacts, o *Options) Result {
	r := Result{Name: "repository"}
	if f.Err != nil {
		r.Status = Critical
		r.Message = f.Err.Error()
		switch {
		case f.Where == "":
			r.Fix = "set repo = file:///var/lib/walvault or s3://bucket/prefix in the config file (or --repo, WALVAULT_REPO)"
		case errors.Is(f.Err, repo.ErrNotInitialized):
			r.Fix = "create it: sudo -u postgres " + o.walvault("init")
		case errors.Is(f.Err, repo.ErrUnsupportedFormat):
			r.Fix = "upgrade walvault on this host to the version that wrote the repository"
		case storage.IsTransient(f.Err):
			r.Fix = "check the network path and credentials to the store (s3-endpoint, s3-access-key, AWS_PROFILE)"
		default:
			r.Fix = "check that this user can read " + f.Where + " (permissions, credentials), then run " + o.walvault("verify") + " where the identity is"
		}
		return r
	}
	c := f.Config
	if f.ListErr != nil {
		r.Status = Critical
		r.Message = fmt.Sprintf("%s: %v", f.Where, f.ListErr)
		r.Fix = "check that this user can list " + f.Where + " (permissions, credentials)"
		return r
	}
	r.Message = fmt.Sprintf("%s: system identifier %s, PostgreSQL %d, %s segments; %s",
		f.Where, c.SystemIdentifier, c.PGMajor, units.Bytes(c.WALSegmentSize), c.Guarantees())
	if pg == nil {
		return r
	}
	var why []string
	if pg.SystemIdentifier != c.SysID() {
		why = append(why, fmt.Sprintf("it belongs to the cluster with system identifier %s, this server is %d", c.SystemIdentifier, pg.SystemIdentifier))
	}
	if pg.Major != 0 && pg.Major != c.PGMajor {
		why = append(why, fmt.Sprintf("it holds PostgreSQL %d, this server runs %d", c.PGMajor, pg.Major))
	}
	if pg.SegSize != 0 && pg.SegSize != c.WALSegmentSize {
		why = append(why, fmt.Sprintf("it holds %s segments, this server writes %s", units.Bytes(c.WALSegmentSize), units.Bytes(pg.SegSize)))
	}
	if len(why) > 0 {
		r.Status = Critical
		r.Message = f.Where + " is not this cluster's repository: " + strings.Join(why, "; ") + " (wal-push refuses this server's WAL)"
		r.Fix = "point repo at this cluster's own repository, or create one for it: " + o.walvault("init", "--repo NEW-URL") +
			" (after a major upgrade or a new initdb a new repository is needed)"
	}
	return r
}

// judgeRecipients parses the recipients archiving encrypts to, and, when an
// identity is configured too, proves that it can read what they encrypt.
func judgeRecipients(f *repositoryFacts, o *Options) Result {
	r := Result{Name: "recipients"}
	if f.Err == nil && !f.Config.Encrypted() {
		if o.Recipients != "" || o.RecipientsFile != "" || o.IdentityFile != "" {
			r.Status = Critical
			r.Message = repo.ConfigKey + " says the repository is not encrypted, but this host is configured with age keys: walvault refuses it (tampering, or the wrong repository)"
			r.Fix = "if someone changed " + repo.ConfigKey + ", put back \"encryption\": \"age\"; if the repository really was created with --no-encryption, remove the age settings from this host's configuration"
			return r
		}
		r.Message = "the repository is not encrypted (created with --no-encryption): no keys needed"
		return r
	}
	var recs []age.Recipient
	var errs []string
	if o.Recipients != "" {
		rs, err := crypto.ParseRecipients(o.Recipients)
		if err != nil {
			errs = append(errs, "age-recipients: "+err.Error())
		}
		recs = append(recs, rs...)
	}
	if o.RecipientsFile != "" {
		rs, err := crypto.ReadRecipientsFile(o.RecipientsFile)
		if err != nil {
			errs = append(errs, "age-recipients-file: "+err.Error())
		}
		recs = append(recs, rs...)
	}
	var shown []string
	for _, rc := range recs {
		if s, ok := rc.(fmt.Stringer); ok {
			shown = append(shown, s.String())
		}
	}
	if len(errs) == 0 && len(recs) == 0 && f.writer != nil {
		// A writer key file carries the recipients it was issued with,
		// and wal-push and backup take them from it.
		for _, s := range f.writer.Recipients {
			rs, err := crypto.ParseRecipients(s)
			if err != nil {
				errs = append(errs, "writer key "+o.WriterKeyFile+": "+err.Error())
			}
			recs = append(recs, rs...)
		}
		shown = append(shown, f.writer.Recipients...)
	}
	switch {
	case len(errs) > 0:
		r.Status = Critical
		r.Message = strings.Join(errs, "; ")
		r.Fix = "correct the recipients in the config file: age1… (walvault keygen prints one), ssh-ed25519 … or ssh-rsa …"
		return r
	case len(recs) == 0:
		r.Status = Critical
		r.Message = "no age recipients configured: wal-push and backup cannot encrypt"
		r.Fix = "set age-recipients = age1… (the public key walvault keygen printed) in the config file, or writer-key-file = a writer key issued with them"
		return r
	}
	r.Message = fmt.Sprintf("%d recipient(s) parse", len(recs))
	if len(shown) > 0 {
		r.Message += " (" + shortRecipients(shown) + ")"
	}
	if o.IdentityFile == "" {
		return r
	}
	if f.identityErr != nil {
		r.Status = Warning
		r.Message += "; the configured identity cannot be loaded: " + f.identityErr.Error()
		r.Fix = "fix age-identity-file, or remove it from this host's configuration (only restore needs it)"
		return r
	}
	var sealed bytes.Buffer
	w, err := age.Encrypt(&sealed, recs...)
	if err == nil {
		_, err = io.WriteString(w, "walvault check")
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		var rd io.Reader
		if rd, err = age.Decrypt(&sealed, f.identities...); err == nil {
			_, err = io.ReadAll(rd)
		}
	}
	if err != nil {
		r.Status = Warning
		r.Message += "; but the configured identity cannot read what they encrypt: " + crypto.WrapDecryptError(err).Error()
		r.Fix = "make sure age-identity-file holds the private key of one of age-recipients, or new objects will not be readable with it"
		return r
	}
	r.Message += ", and the configured identity reads what they encrypt"
	return r
}

// segNo of a listed segment.
func (f *repositoryFacts) segNo(w repo.WALObject) uint64 {
	return w.File.SegNo(f.Config.WALSegmentSize)
}

// newestSegment is the full segment furthest along (highest segment number,
// then timeline).
func (f *repositoryFacts) newestSegment() (repo.WALObject, bool) {
	var best repo.WALObject
	found := false
	for _, w := range f.Segments {
		if !found || f.segNo(w) > f.segNo(best) || f.segNo(w) == f.segNo(best) && w.File.Timeline > best.File.Timeline {
			best, found = w, true
		}
	}
	return best, found
}

// judgeWAL: is archiving keeping up? Time alone cannot tell (a quiet server
// fills no segment for hours), so the age of the newest upload counts only
// when PostgreSQL has finished segments the repository does not hold yet.
func judgeWAL(f *repositoryFacts, pg *postgresFacts, o *Options) Result {
	r := Result{Name: "wal"}
	now := o.now()
	newest, ok := f.newestSegment()
	if !ok && f.NewestUpload.IsZero() {
		r.Status = Critical
		r.Message = "the repository holds no WAL"
		r.Fix = "make archiving work (see archiving and archiver), then force a segment out: SELECT pg_switch_wal();"
		return r
	}
	age := now.Sub(f.NewestUpload)
	r.Message = fmt.Sprintf("newest WAL %s stored %s", f.NewestName, ago(age))
	cur, haveCur := pg.currentSegment()
	if !haveCur || pg.SegSize != f.Config.WALSegmentSize {
		if age > o.MaxWALAge {
			r.Status = Warning
			r.Message += fmt.Sprintf(" (more than --max-wal-age %s), and the server's WAL position is unknown", o.MaxWALAge)
			r.Fix = "run walvault check where it can reach the primary to tell whether WAL is waiting"
		}
		return r
	}
	waiting := int64(0)
	if ok {
		waiting = int64(cur.SegNo(pg.SegSize)) - int64(f.segNo(newest)) - 1
	} else {
		waiting = 1
	}
	switch {
	case waiting <= 0:
		r.Message += fmt.Sprintf("; the server writes %s, no finished segment waits", cur.Name)
	case age > o.MaxWALAge:
		r.Status = Critical
		r.Message = fmt.Sprintf("%d finished segment(s) before %s are not in the repository, and nothing arrived for %s (--max-wal-age %s); newest stored: %s",
			waiting, cur.Name, humanDuration(age), o.MaxWALAge, f.NewestName)
		r.Fix = "fix archiving (see archiving and archiver above); until then PostgreSQL keeps the WAL in pg_wal, which fills the disk"
	default:
		r.Message += fmt.Sprintf("; %d finished segment(s) still on their way", waiting)
	}
	return r
}

// judgeContinuity looks for missing segments among those stored since the
// newest backup started, by name alone (a timeline's history needs the
// identity; here a segment number counts as present on any timeline). A
// gap there means a restore from that backup stops before it.
func judgeContinuity(f *repositoryFacts, o *Options) (Result, bool) {
	if len(f.Backups) == 0 || len(f.Segments) == 0 {
		return Result{}, false
	}
	start, err := time.Parse("20060102T150405Z", f.Backups[len(f.Backups)-1])
	if err != nil {
		return Result{}, false
	}
	present := map[uint64]bool{}
	var lo, hi uint64
	seen := false
	for _, w := range f.Segments {
		n := f.segNo(w)
		present[n] = true
		if w.ModTime.Before(start) {
			continue
		}
		if !seen || n < lo {
			lo = n
		}
		if !seen || n > hi {
			hi = n
		}
		seen = true
	}
	if !seen {
		return Result{}, false
	}
	var missing []uint64
	for n := lo; n <= hi; n++ {
		if !present[n] {
			missing = append(missing, n)
		}
	}
	r := Result{Name: "wal-continuity"}
	newest, _ := f.newestSegment()
	tli := newest.File.Timeline
	seg := func(n uint64) string { return pgwal.SegmentName(tli, n, f.Config.WALSegmentSize) }
	if len(missing) == 0 {
		r.Message = fmt.Sprintf("no segment missing from %s to %s (stored since backup %s started)", seg(lo), seg(hi), f.Backups[len(f.Backups)-1])
		return r, true
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	r.Status = Critical
	r.Message = fmt.Sprintf("%d segment(s) missing after backup %s, the first %s: a restore from it stops there, and everything after is lost",
		len(missing), f.Backups[len(f.Backups)-1], seg(missing[0]))
	r.Fix = "take a new backup now so that later points restore again: sudo -u postgres " + o.walvault("backup") + "; then find out where the segments went (walvault verify lists every gap)"
	return r, true
}

func judgeBackup(f *repositoryFacts, o *Options) Result {
	r := Result{Name: "backup"}
	now := o.now()
	if len(f.Backups) == 0 {
		r.Status = Critical
		r.Message = "no complete backup in the repository: nothing can be restored"
		r.Fix = "take one: sudo -u postgres " + o.walvault("backup") + "; and schedule it (deploy/systemd: walvault-backup@.timer)"
		return r
	}
	id := f.Backups[len(f.Backups)-1]
	started, err := time.Parse("20060102T150405Z", id)
	if err != nil {
		started = f.BackupTime
	}
	age := now.Sub(started)
	r.Message = fmt.Sprintf("newest backup %s started %s (%d complete)", id, ago(age), len(f.Backups))
	if age > o.MaxBackupAge {
		r.Status = Warning
		r.Message += fmt.Sprintf(", more than --max-backup-age %s: a restore replays all WAL since", humanDuration(o.MaxBackupAge))
		r.Fix = "take one: sudo -u postgres " + o.walvault("backup") + "; and check the timer: systemctl list-timers 'walvault-backup@*'"
	}
	switch {
	case f.ManifestErr != nil:
		r.Status = max(r.Status, Warning)
		r.Message += "; its manifest cannot be read with the configured identity: " + f.ManifestErr.Error()
		r.Fix = strings.TrimPrefix(r.Fix+"\n", "\n") + "check it where the right identity is: " + o.walvault("verify", "--backup", id)
	case f.Manifest != nil:
		if f.Manifest.SystemIdentifier != f.Config.SystemIdentifier {
			r.Status = Critical
			r.Message += fmt.Sprintf("; but its manifest names system identifier %s, not the repository's %s", f.Manifest.SystemIdentifier, f.Config.SystemIdentifier)
			r.Fix = o.walvault("verify", "--backup", id) + "; then take a new backup"
		} else {
			r.Message += fmt.Sprintf(", manifest read: %s to %s", f.Manifest.StartLSN, f.Manifest.StopLSN)
		}
	}
	return r
}

// judgeLocks shows the repository locks: who holds one, and a WARNING for
// the objects no walvault writes (an expiry beyond repo.LockHorizon, a name
// that is not a lock key), which Lock ignores: someone else can write the
// repository. Nothing to show without any lock object.
func judgeLocks(f *repositoryFacts, o *Options) (Result, bool) {
	r := Result{Name: "locks"}
	if f.LockErr != nil {
		r.Status = Unknown
		r.Message = "could not list the locks: " + f.LockErr.Error()
		r.Fix = "check that this user can list " + f.Where + " (permissions, credentials)"
		return r, true
	}
	if len(f.Locks) == 0 && len(f.MalformedLocks) == 0 {
		return r, false
	}
	now := o.now()
	var held, bad []string
	for _, li := range f.Locks {
		why := repo.JudgeLock(li, now)
		if u := f.UnsignedLocks[li.Key]; why == "" && u != "" && li.Expires.After(now) {
			why = u
		}
		switch {
		case why != "":
			bad = append(bad, li.Key+": "+why)
		case li.Expires.After(now):
			held = append(held, fmt.Sprintf("%s holds %s lock until %s", li.Command, li.Kind, li.Expires.Format(time.RFC3339)))
		}
	}
	for _, k := range f.MalformedLocks {
		bad = append(bad, k+": not a lock name")
	}
	switch {
	case len(bad) > 0:
		r.Status = Warning
		r.Message = fmt.Sprintf("%d object(s) under locks/ that walvault never writes, ignored by every command: %s", len(bad), strings.Join(bad, "; "))
		r.Fix = "someone else can write " + f.Where + " (or a host's clock is far off: check NTP): find out who (walvault audit, the store's access logs), rotate its credentials, then delete those objects"
	case len(held) > 0:
		r.Message = strings.Join(held, "; ")
	default:
		r.Message = "no lock held (expired locks left by stopped commands are removed by the next one)"
	}
	return r, true
}

// archiveTest writes a little WAL, switches segments and waits for the
// finished one to appear in the repository.
func archiveTest(ctx context.Context, f *repositoryFacts, o *Options) Result {
	r := Result{Name: "archive-test"}
	start := time.Now()
	failedBefore, failedBeforeErr := archiverFailures(ctx, o.ConnString)
	name, err := switchWAL(ctx, o.ConnString)
	if err != nil {
		r.Status = Critical
		r.Message = "could not switch WAL: " + err.Error()
		r.Fix = "run the check as a superuser, or GRANT EXECUTE ON FUNCTION pg_switch_wal() TO the check's role"
		return r
	}
	fn, err := pgwal.ParseFileName(name)
	if err != nil || fn.Kind != pgwal.KindSegment {
		r.Status = Unknown
		r.Message = fmt.Sprintf("pg_switch_wal closed %q, not a segment name", name)
		return r
	}
	poll := o.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	wctx, cancel := context.WithTimeout(ctx, o.ArchiveTimeout)
	defer cancel()
	var lastErr error
	for {
		found, err := f.repo.HasWAL(wctx, fn)
		if found {
			r.Message = fmt.Sprintf("switched to a new segment; %s reached the repository in %s", name, time.Since(start).Round(10*time.Millisecond))
			return r
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-wctx.Done():
			r.Status = Critical
			r.Message = fmt.Sprintf("switched to a new segment, but %s did not reach the repository within %s", name, o.ArchiveTimeout)
			if lastErr != nil {
				r.Message += " (last store error: " + lastErr.Error() + ")"
			}
			if failedBeforeErr == nil {
				if after, err := archiverFailures(ctx, o.ConnString); err == nil && after.count > failedBefore.count {
					r.Message += fmt.Sprintf("; archive_command failed %d time(s) meanwhile, the last for %s", after.count-failedBefore.count, after.wal)
				}
			}
			r.Fix = "see archiving and archiver above and PostgreSQL's log; try the archive_command by hand: sudo -u postgres " +
				o.walvault("wal-push", "$PGDATA/pg_wal/"+name)
			return r
		case <-time.After(poll):
		}
	}
}

type failures struct {
	count int64
	wal   string
}

// archiverFailures reads pg_stat_archiver's failure count, to tell whether
// it rises during the archive test.
func archiverFailures(ctx context.Context, connString string) (failures, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := pgconnConnect(cctx, connString)
	if err != nil {
		return failures{}, err
	}
	defer c.c.Close(context.Background())
	rows, err := c.rows(cctx, "SELECT failed_count, coalesce(last_failed_wal, '') FROM pg_stat_archiver")
	if err != nil || len(rows) != 1 {
		return failures{}, fmt.Errorf("read pg_stat_archiver: %v", err)
	}
	n, err := strconv.ParseInt(rows[0][0], 10, 64)
	return failures{count: n, wal: rows[0][1]}, err
}

func switchWAL(ctx context.Context, connString string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := pgconnConnect(cctx, connString)
	if err != nil {
		return "", err
	}
	defer c.c.Close(context.Background())
	// A commit record first: with no WAL written since the last switch,
	// pg_switch_wal does nothing and would name a segment archived long ago.
	if _, err := c.rows(cctx, "SELECT txid_current()"); err != nil {
		return "", err
	}
	// The segment the switch closed holds the byte before the switch
	// point (pg_walfile_name of the point itself names the next segment
	// on PostgreSQL 17+ when it falls on a boundary).
	rows, err := c.rows(cctx, `SELECT s::text, pg_walfile_name(s),
		(SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') FROM pg_switch_wal() s`)
	if err != nil {
		return "", err
	}
	if len(rows) != 1 {
		return "", errors.New("pg_switch_wal returned no row")
	}
	segSize, _ := strconv.ParseInt(rows[0][2], 10, 64)
	name := segmentAt(rows[0][0], rows[0][1], segSize, 1)
	if name == "" {
		return "", fmt.Errorf("pg_switch_wal returned %q, %q, segment size %q: cannot name the closed segment", rows[0][0], rows[0][1], rows[0][2])
	}
	return name, nil
}
