package pitr

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/repo/catalog"
	"github.com/walvault/walvault/storage"
)

// Sentinel errors the CLI maps to exit statuses.
var (
	// ErrTargetOutsideWindow: the recovery target is not inside the window
	// the chosen backup and the archived WAL can reach. The message shows
	// the window (RFC 3339 and LSN) and what to do.
	ErrTargetOutsideWindow = errors.New("recovery target outside the recoverable window")
	// ErrDirNotEmpty: the data directory or a tablespace directory holds
	// files and Force was not given.
	ErrDirNotEmpty = errors.New("target directory is not empty")
	// ErrNoBackup: no backup exists, the named one does not, or none that
	// fits the target is usable (its WAL is incomplete, or it is not on the
	// history of the timeline recovery would follow).
	ErrNoBackup = errors.New("no usable backup")
	// ErrTablespaceLocation: a tablespace location that only the backup
	// names (no TablespaceMap entry) is missing, reached through a
	// symbolic link, inside SystemDirs, or (as root) not the Owner's. The
	// message names it and how to map it (see tslocation.go).
	ErrTablespaceLocation = errors.New("tablespace location refused")
)

// Options configure Run.
type Options struct {
	// PGData is the data directory to restore into; made absolute. It must
	// be empty or missing (then it is created with mode 0700) unless Force.
	PGData string
	// BackupID restores that backup; empty chooses one for the target.
	BackupID string
	Target   Target
	// TablespaceMap maps a tablespace's original location to the directory
	// to restore it into (which must be empty or missing, unless
	// ClearTablespaces; it is created when missing). A location the
	// backup names that this map does not is used only if it exists, empty,
	// outside SystemDirs, without a symbolic link in its path and, as
	// root, owned by Owner: else ErrTablespaceLocation.
	TablespaceMap map[string]string
	// Owner is the account that must own the restored files when Run runs
	// as root (default "postgres"); ignored otherwise.
	Owner string
	// Force allows a non-empty PGData: after the backup was chosen and
	// checked, its contents are removed (the directory itself stays). It
	// never clears a tablespace directory outside PGData: those must be
	// empty or missing, unless named in TablespaceMap and ClearTablespaces
	// is set.
	Force bool
	// ExpectWALAtLeast, when not zero, is how far the archive must reach
	// (catalog.CheckReaches): less is repo.ErrIncompleteWAL, before
	// anything is written.
	ExpectWALAtLeast pgwal.LSN
	// Delta restores into a PGData that holds the same cluster (damaged,
	// or behind), rewriting only the blocks that differ from the backup's
	// (delta.go). It needs a block backup and the content key; a
	// tablespace is compared in the directory the cluster links it to.
	Delta bool
	// ClearTablespaces allows the directories TablespaceMap names as new
	// locations to be non-empty: their contents are removed like PGData's
	// with Force. Directories the backup names that the map does not are
	// never cleared.
	ClearTablespaces bool
	// RestoreCommand is the complete restore_command to configure, e.g.
	// `'/usr/bin/walvault' wal-fetch --config '/x/walvault-recovery.conf' %f %p`.
	// What it reads lives outside PGData (restore/recoverydir): Run writes
	// nothing into PGData but what PostgreSQL expects there.
	RestoreCommand string
	// EndCommand, if set, is the recovery_end_command: it runs once when
	// recovery ends (e.g. to remove what RestoreCommand read).
	EndCommand string
	// Workers bounds parallel download, decryption and decompression; about
	// Workers chunks of plaintext are in memory at once (default
	// 2×GOMAXPROCS).
	Workers int
	// Progress, when set, is called from one goroutine after each chunk
	// with the plaintext bytes restored so far and in total.
	Progress func(done, total int64)
	// Logger receives progress and warnings (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Result describes a completed restore.
type Result struct {
	Backup *repo.BackupManifest
	// Window is what the restored cluster can recover to from Backup.
	Window catalog.Window
	// Bytes is the plaintext size of every archive; Files counts the
	// regular files written.
	Bytes    int64
	Files    int
	Duration time.Duration
	// Warnings are things the operator should know before starting the
	// server (also logged).
	Warnings []string
}

// Names in the data directory that this package writes or must not restore.
const (
	backupLabelFile   = "backup_label"
	tablespaceMapFile = "tablespace_map"
	autoConfFile      = "postgresql.auto.conf"
	recoverySignal    = "recovery.signal"
	standbySignal     = "standby.signal"
	manifestFile      = "backup_manifest"
)

// notRestored are files of a data directory that a restore must not bring
// back: a stale postmaster.pid blocks startup, and a signal file would
// start recovery before the restore is complete (or as a standby).
var notRestored = []string{"postmaster.pid", "postmaster.opts", recoverySignal, standbySignal}

// destination is where one archive goes.
type destination struct {
	archive *repo.Archive
	dir     string // absolute directory for tar archives
	inPlace bool   // a tablespace inside PGData (allow_in_place_tablespaces)
	mapped  bool   // dir was named by the operator in TablespaceMap
}

// Run restores a backup into opts.PGData and configures PostgreSQL to
// recover to opts.Target. See the package documentation for the steps and
// what is left on disk when it fails.
func Run(ctx context.Context, r *repo.Repository, opts Options) (_ *Result, err error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	started := now()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.Owner == "" {
		opts.Owner = "postgres"
	}
	if err := opts.Target.Validate(); err != nil {
		return nil, err
	}
	if opts.RestoreCommand == "" {
		return nil, errors.New("restore: no restore_command given")
	}
	// Values that postgresql.auto.conf cannot hold are refused now, not
	// after the download.
	if _, err := recoveryConfig("", started, opts, nil); err != nil {
		return nil, err
	}
	pgdata, err := filepath.Abs(opts.PGData)
	if err != nil || opts.PGData == "" {
		return nil, fmt.Errorf("data directory %q: cannot make it absolute: %v", opts.PGData, err)
	}
	if pgdata == "/" {
		return nil, errors.New("refusing to restore into /")
	}
	if err := checkDir(pgdata, opts.Force || opts.Delta, "restore into an empty or missing directory, or pass --force to delete its contents first (or --delta to rewrite only what differs)"); err != nil {
		return nil, err
	}
	live := liveClusters()
	if err := checkNotRunning(pgdata); err != nil {
		return nil, err
	}
	if err := checkNotInUse("the data directory", pgdata, live); err != nil {
		return nil, err
	}
	uid, gid, chown, err := lookupOwner(opts.Owner)
	if err != nil {
		return nil, err
	}

	// One damaged manifest must not make the other backups unusable; the
	// backup asked for by id must be readable, though.
	cat, skipped, err := catalog.LoadReadable(ctx, r)
	if err != nil {
		return nil, err
	}
	var skippedWarnings []string
	for _, u := range skipped {
		if u.ID == opts.BackupID {
			return nil, fmt.Errorf("backup %s: %w", u.ID, u.Err)
		}
		w := fmt.Sprintf("backup %s left out: its manifest %s cannot be read (%v); walvault verify reports what else is damaged",
			u.ID, repo.BackupManifestKey(u.ID), u.Err)
		skippedWarnings = append(skippedWarnings, w)
		log.Warn(w)
	}
	for _, p := range cat.StopTimeProblems {
		skippedWarnings = append(skippedWarnings, p.Error())
		log.Warn(p.Error())
	}
	ch, err := chooseBackup(cat, opts.BackupID, opts.Target)
	if err != nil {
		return nil, err
	}
	b := ch.backup
	if b.SystemIdentifier != "" && b.SystemIdentifier != r.Config.SystemIdentifier {
		return nil, fmt.Errorf("%w: backup %s is of the cluster with system identifier %s, the repository's is %s", repo.ErrClusterMismatch, b.ID, b.SystemIdentifier, r.Config.SystemIdentifier)
	}
	// To the latest point, all the WAL the signed heads say was archived
	// must be there: else recovery would end early and promote (issue 14).
	if opts.Target.kind() == "" && (opts.Target.Timeline == "" || opts.Target.Timeline == "latest") {
		if err := cat.CheckComplete(cat.LatestWALTimeline(), b.StartLSN); err != nil {
			return nil, err
		}
	}
	if err := cat.CheckReaches(cat.LatestWALTimeline(), opts.ExpectWALAtLeast); err != nil {
		return nil, err
	}
	log.Info("chosen backup", append([]any{"backup", b.ID, "target", opts.Target.String(), "stop_lsn", b.StopLSN.String()}, describeWindow(ch.window)...)...)

	dests, err := plan(pgdata, b, opts.TablespaceMap)
	if err != nil {
		return nil, err
	}
	var own map[string]bool // tablespace directories a delta restore compares in place
	if opts.Delta {
		if own, err = checkDelta(r, pgdata, b, dests); err != nil {
			return nil, err
		}
	}
	cleared := func(d destination) bool {
		if d.dir == pgdata {
			return opts.Force && !opts.Delta
		}
		return d.mapped && opts.ClearTablespaces
	}
	// What the restore rewrites in place counts as free space.
	reused := func(d destination) bool {
		return cleared(d) || (opts.Delta && (d.dir == pgdata || own[d.dir]))
	}
	for _, d := range dests {
		if d.archive.Name == repo.ServerManifestArchive || d.dir == pgdata || d.inPlace {
			continue
		}
		what := "the directory of tablespace " + d.archive.Name
		if err := checkNotInUse(what, d.dir, live); err != nil {
			return nil, err
		}
		if d.named() {
			if err := checkNamedLocation(d, chown, opts.Owner, uid); err != nil {
				return nil, err
			}
		}
		hint := fmt.Sprintf("--force clears only the data directory, never a tablespace directory outside it. Restore tablespace %s into an empty directory with --tablespace-map %s=NEWDIR", d.archive.Name, d.archive.TablespacePath)
		if d.mapped {
			hint = fmt.Sprintf("--force clears only the data directory. %s was named with --tablespace-map: to delete what it holds, confirm with --clear-tablespaces, or map tablespace %s to an empty directory", d.dir, d.archive.Name)
		} else {
			hint += fmt.Sprintf(", or, if %s is yours to overwrite, name it (--tablespace-map %s=%s) and confirm with --clear-tablespaces", d.dir, d.archive.TablespacePath, d.dir)
		}
		if opts.Delta && !cleared(d) {
			hint = deltaHint(pgdata, d)
		}
		if err := checkDir(d.dir, cleared(d) || own[d.dir], hint); err != nil {
			return nil, err
		}
	}
	if err := checkSpace(dests, reused); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// From here on the target directories change. recovery.signal is
	// written last, so an interrupted restore never looks startable; a
	// failure says what it left.
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w; %s now holds a partial restore (without recovery.signal, so PostgreSQL will not start on it): restore again with --force, or remove it", err, pgdata)
		}
	}()
	dirs := []string{pgdata}
	dirDests := []destination{{dir: pgdata}}
	for _, d := range dests {
		if d.dir != pgdata && !d.inPlace && d.archive.Name != repo.ServerManifestArchive {
			dirs = append(dirs, d.dir)
			dirDests = append(dirDests, d)
		}
	}
	for i, dir := range dirs {
		if d := dirDests[i]; d.named() {
			// Never created (checked above); only its mode is set.
			if err := prepareNamedDir(d); err != nil {
				return nil, err
			}
			continue
		}
		created, err := prepareDir(dir, cleared(dirDests[i]))
		if err != nil {
			return nil, err
		}
		// Directories created above the target (as root: owned by root,
		// mode 0700) must let the owner through.
		if chown {
			for _, c := range created {
				if err := os.Lchown(c, uid, gid); err != nil {
					return nil, fsErr("chown", c, err)
				}
			}
		}
	}
	res := &Result{Backup: b, Window: ch.window, Warnings: skippedWarnings}
	if w := gapWarning(cat, opts.Target, ch.window); w != "" {
		res.Warnings = append(res.Warnings, w)
	}
	if ch.edge {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the target %s is within the second in which backup %s ended (the server's STOP TIME, in whole seconds, is %s): if a transaction in the backup's WAL committed after the target, PostgreSQL refuses to start with \"requested recovery stop point is before consistent recovery point\"; restore again with a target at or after %s then",
			opts.Target, b.ID, b.ServerStopTime.UTC().Format(time.RFC3339), b.StopTime.UTC().Format(time.RFC3339Nano)))
	}
	var tops map[string]map[string]bool // what a delta restore wrote in each tablespace directory
	if opts.Delta {
		tops, err = restoreDelta(ctx, r, b, pgdata, dests, opts, res, log)
	} else {
		err = restoreArchives(ctx, r, b, pgdata, dests, opts, res, log)
	}
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(pgdata)
	if err != nil {
		return nil, fsErr("open", pgdata, err)
	}
	defer root.Close()
	for _, name := range notRestored {
		if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fsErr("remove", filepath.Join(pgdata, name), err)
		}
	}
	if err := appendRecoveryConfig(root, b.ID, now(), opts); err != nil {
		return nil, fsErr("append to", filepath.Join(pgdata, autoConfFile), err)
	}
	if chown {
		for _, d := range dirDests {
			if err := chownTree(d, uid, gid, tops[d.dir]); err != nil {
				return nil, err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, dir := range dirs {
		if err := syncDir(dir); err != nil {
			return nil, err
		}
	}
	if err := writeSignal(root, pgdata, chown, uid, gid); err != nil {
		return nil, err
	}

	res.Warnings = append(res.Warnings, "when the restored server is promoted it archives WAL as its configuration says (archive_mode, archive_command or archive_library, kept as in the backup): if that points at this repository, the new timeline is archived there, which is what a real recovery needs; disable archiving first for a test restore")
	for _, w := range res.Warnings[len(skippedWarnings):] { // those were logged when found
		log.Warn(w)
	}
	res.Duration = now().Sub(started)
	log.Info("restore complete", "backup", b.ID, "dir", pgdata, "files", res.Files, "bytes", res.Bytes, "duration", res.Duration.Round(time.Millisecond).String())
	return res, nil
}

// plan assigns every archive of b its destination and checks the tablespace
// mapping.
func plan(pgdata string, b *repo.BackupManifest, mapping map[string]string) ([]destination, error) {
	var dests []destination
	used := make(map[string]bool)
	seenBase, seenManifest := false, false
	for i := range b.Archives {
		a := &b.Archives[i]
		// Chunk keys become file names in a directory repository:
		// each must be a plain key inside this backup's folder.
		for _, c := range a.Chunks {
			if !storage.ValidKey(c.Key) || !repo.IsBackupKey(b.ID, c.Key) {
				return nil, fmt.Errorf("%w: backup %s lists a chunk %q outside the backup", repo.ErrIntegrity, b.ID, c.Key)
			}
		}
		switch {
		case a.Name == "base.tar":
			if seenBase {
				return nil, fmt.Errorf("%w: backup %s lists base.tar twice", repo.ErrIntegrity, b.ID)
			}
			seenBase = true
			dests = append(dests, destination{archive: a, dir: pgdata})
		case a.Name == repo.ServerManifestArchive:
			if seenManifest {
				return nil, fmt.Errorf("%w: backup %s lists backup_manifest twice", repo.ErrIntegrity, b.ID)
			}
			seenManifest = true
			dests = append(dests, destination{archive: a, dir: pgdata})
		case a.TablespacePath != "" && strings.HasSuffix(a.Name, ".tar"):
			if _, err := tablespaceOID(a); err != nil {
				return nil, fmt.Errorf("%w: backup %s: %v", repo.ErrIntegrity, b.ID, err)
			}
			d := destination{archive: a}
			if to, ok := mapping[a.TablespacePath]; ok {
				if !filepath.IsAbs(to) {
					return nil, fmt.Errorf("tablespace mapping %s=%s: the new location must be an absolute path", a.TablespacePath, to)
				}
				d.dir, d.mapped = filepath.Clean(to), true
				used[a.TablespacePath] = true
			} else if filepath.IsAbs(a.TablespacePath) {
				d.dir = filepath.Clean(a.TablespacePath)
			} else if filepath.IsLocal(a.TablespacePath) {
				d.dir, d.inPlace = filepath.Join(pgdata, a.TablespacePath), true
			} else {
				return nil, fmt.Errorf("%w: backup %s: tablespace %s has the location %q; map it to a directory with --tablespace-map", repo.ErrIntegrity, b.ID, a.Name, a.TablespacePath)
			}
			dests = append(dests, d)
		default:
			return nil, fmt.Errorf("%w: backup %s holds an archive %q this walvault does not know", repo.ErrUnsupportedFormat, b.ID, a.Name)
		}
	}
	if !seenBase {
		return nil, fmt.Errorf("%w: backup %s has no base.tar", repo.ErrIntegrity, b.ID)
	}
	var unknown []string
	for from := range mapping {
		if !used[from] {
			unknown = append(unknown, from)
		}
	}
	if len(unknown) > 0 {
		var known []string
		for _, d := range dests {
			if d.archive.TablespacePath != "" {
				known = append(known, d.archive.TablespacePath)
			}
		}
		sort.Strings(unknown)
		return nil, fmt.Errorf("tablespace mapping for %s: backup %s has no tablespace there (its tablespaces: %s)", strings.Join(unknown, ", "), b.ID, orNone(known))
	}
	// Directories must not overlap, or clearing and filling one would
	// destroy another.
	for i, d := range dests {
		if d.dir == pgdata || d.inPlace {
			continue
		}
		if within(d.dir, pgdata) || within(pgdata, d.dir) {
			return nil, fmt.Errorf("tablespace %s would be restored to %s, which overlaps the data directory %s; map it elsewhere with --tablespace-map", d.archive.Name, d.dir, pgdata)
		}
		for _, e := range dests[:i] {
			if e.dir != pgdata && !e.inPlace && (within(d.dir, e.dir) || within(e.dir, d.dir)) {
				return nil, fmt.Errorf("tablespaces %s and %s would be restored to overlapping directories %s and %s", e.archive.Name, d.archive.Name, e.dir, d.dir)
			}
		}
	}
	return dests, nil
}

// within reports whether p is dir or inside it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

var oidName = regexp.MustCompile(`^([1-9][0-9]{0,9})\.tar$`)

// tablespaceOID returns the OID of a tablespace archive.
func tablespaceOID(a *repo.Archive) (string, error) {
	if a.TablespaceOID != 0 {
		return strconv.FormatUint(uint64(a.TablespaceOID), 10), nil
	}
	m := oidName.FindStringSubmatch(a.Name)
	if m == nil {
		return "", fmt.Errorf("tablespace archive %q has no OID", a.Name)
	}
	return m[1], nil
}

// restoreArchives streams every archive to its destination.
func restoreArchives(ctx context.Context, r *repo.Repository, b *repo.BackupManifest, pgdata string, dests []destination, opts Options, res *Result, log *slog.Logger) error {
	var total int64
	var fl *repo.OpenFileList
	for _, d := range dests {
		if d.archive.Layout == repo.ArchiveBlocks {
			total += d.archive.Bytes
			if fl == nil {
				var err error
				if fl, err = r.OpenFileList(ctx, b.ID); err != nil {
					return fmt.Errorf("file list of backup %s: %w", b.ID, err)
				}
				defer fl.Close()
			}
			continue
		}
		if d.archive.Layout != "" {
			return fmt.Errorf("%w: backup %s: archive %s has layout %q, which this walvault does not know", repo.ErrUnsupportedFormat, b.ID, d.archive.Name, d.archive.Layout)
		}
		var sum int64
		for _, c := range d.archive.Chunks {
			sum += c.Size
		}
		if d.archive.Bytes != 0 && sum != d.archive.Bytes {
			return fmt.Errorf("%w: backup %s: the chunks of %s add up to %d bytes, the manifest says %d", repo.ErrIntegrity, b.ID, d.archive.Name, sum, d.archive.Bytes)
		}
		total += sum
	}
	f := startFetcher(ctx, r, b, opts.Workers)
	defer f.stop()
	var done int64
	if opts.Progress != nil {
		opts.Progress(0, total)
	}
	progress := func(n int) {
		done += int64(n)
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	var baseSeen map[string]bool
	var cache *packCache
	for _, d := range dests {
		a := d.archive
		var ar io.Reader
		var chunks *archiveReader
		if a.Layout == repo.ArchiveBlocks {
			if !fl.HasArchive(a.Name) {
				return fmt.Errorf("%w: the file list of backup %s has no archive %s", repo.ErrIntegrity, b.ID, a.Name)
			}
			if cache == nil {
				cache = newPackCache(r)
			}
			ba := newBlockArchiveReader(ctx, r, cache, fl, a.Name, opts.Workers, progress)
			defer ba.Close()
			ar, chunks = ba, &archiveReader{f: f}
		} else {
			chunks = &archiveReader{f: f, left: len(a.Chunks), progress: progress}
			ar = chunks
		}
		log.Info("restoring archive", "archive", a.Name, "dir", d.dir, "bytes", a.Bytes)
		var err error
		if a.Name == repo.ServerManifestArchive {
			err = restoreManifest(pgdata, ar)
		} else {
			var x *extractor
			x, err = extractArchive(d, pgdata, ar)
			if x != nil {
				res.Files += x.files
				if a.Name == "base.tar" {
					baseSeen = x.seen
				}
			}
		}
		if chunks.err != nil {
			return chunks.err
		}
		if err != nil {
			return tarError(a.Name, err)
		}
		// Tar streams end with padding after the end-of-archive marker;
		// read it so the next archive starts at its own first chunk.
		if _, err := io.Copy(io.Discard, ar); err != nil {
			return err
		}
		if a.Name == repo.ServerManifestArchive {
			res.Files++
		}
	}
	res.Bytes = done
	if !baseSeen[backupLabelFile] {
		return fmt.Errorf("%w: base.tar of backup %s has no backup_label; PostgreSQL could not recover from it", repo.ErrIntegrity, b.ID)
	}
	return writeTablespaceMap(pgdata, dests, baseSeen[tablespaceMapFile])
}

func extractArchive(d destination, pgdata string, ar io.Reader) (*extractor, error) {
	root, err := openDest(d, pgdata)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	x := newExtractor(root, d.dir)
	if d.dir == pgdata && !d.inPlace {
		x.skip = func(name string, hdr *tar.Header) bool {
			for _, n := range notRestored {
				if name == n {
					return true
				}
			}
			// Tablespace links are recreated by PostgreSQL from
			// tablespace_map (or by the one written here); their absolute
			// targets would be refused anyway.
			if hdr.Typeflag == tar.TypeSymlink && path.Dir(name) == "pg_tblspc" {
				return true
			}
			return name == manifestFile
		}
	}
	return x, x.extract(ar)
}

// openDest opens the directory an archive is extracted into. An in-place
// tablespace is opened through the data directory's root, so that it stays
// inside it whatever base.tar held.
func openDest(d destination, pgdata string) (*os.Root, error) {
	if !d.inPlace {
		return openTarget(d)
	}
	pr, err := os.OpenRoot(pgdata)
	if err != nil {
		return nil, fsErr("open", pgdata, err)
	}
	defer pr.Close()
	rel, err := filepath.Rel(pgdata, d.dir)
	if err != nil {
		return nil, err
	}
	if err := pr.MkdirAll(rel, 0o700); err != nil {
		return nil, fsErr("create directory", d.dir, err)
	}
	root, err := pr.OpenRoot(rel)
	if err != nil {
		return nil, fsErr("open", d.dir, err)
	}
	return root, nil
}

// restoreManifest writes the server's backup_manifest into the data
// directory, as pg_basebackup's plain format does, so that pg_verifybackup
// can check the restored files.
func restoreManifest(pgdata string, r io.Reader) error {
	p := filepath.Join(pgdata, manifestFile)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fsErr("create", p, err)
	}
	if _, err := io.Copy(onlyWriter{f}, r); err != nil {
		f.Close()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return fsErr("write", p, err)
		}
		return err
	}
	if err := f.Close(); err != nil {
		return fsErr("write", p, err)
	}
	return nil
}

// writeTablespaceMap points tablespace_map at the directories the
// tablespaces were restored to, and pg_tblspc/<oid> too. PostgreSQL
// recreates pg_tblspc/<oid> from tablespace_map at startup anyway. A backup
// without one (taken without the TABLESPACE_MAP option) gets one written
// from the manifest. The backup's own tablespace_map may name only the
// manifest's tablespaces: PostgreSQL would make a link to any other path
// it lists, a path nobody checked.
func writeTablespaceMap(pgdata string, dests []destination, exists bool) error {
	newPath := make(map[string]string) // OID → new location
	inPlace := make(map[string]string) // OID → location inside PGData
	for _, d := range dests {
		if d.archive.TablespacePath == "" {
			continue
		}
		oid, _ := tablespaceOID(d.archive)
		if d.inPlace {
			inPlace[oid] = d.archive.TablespacePath
		} else {
			newPath[oid] = d.dir
		}
	}
	root, err := os.OpenRoot(pgdata)
	if err != nil {
		return fsErr("open", pgdata, err)
	}
	defer root.Close()
	p := filepath.Join(pgdata, tablespaceMapFile)
	var links []tablespaceLink
	changed := false
	if exists {
		data, err := root.ReadFile(tablespaceMapFile)
		if err != nil {
			return fsErr("read", p, err)
		}
		links, err = parseTablespaceMap(data)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", repo.ErrIntegrity, p, err)
		}
	}
	listed := make(map[string]bool)
	for i, l := range links {
		switch to, ok := newPath[l.OID]; {
		case ok:
			links[i].Path = to
		case inPlace[l.OID] != "":
			if l.Path != inPlace[l.OID] {
				links[i].Path, changed = inPlace[l.OID], true
			}
		default:
			return fmt.Errorf("%w: the backup's tablespace_map names tablespace %s at %q, which its manifest does not list", repo.ErrIntegrity, l.OID, l.Path)
		}
		listed[l.OID] = true
	}
	if len(newPath) == 0 && !changed {
		return nil
	}
	for _, oid := range sortedKeys(newPath) {
		if !listed[oid] {
			links = append(links, tablespaceLink{OID: oid, Path: newPath[oid]})
		}
	}
	// Written through the Root, created afresh: a link base.tar left under
	// the temporary name is replaced, never written through.
	tmp := tablespaceMapFile + ".walvault-tmp"
	if err := root.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fsErr("remove", filepath.Join(pgdata, tmp), err)
	}
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fsErr("create", filepath.Join(pgdata, tmp), err)
	}
	_, err = f.Write(formatTablespaceMap(links))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		root.Remove(tmp)
		return fsErr("write", filepath.Join(pgdata, tmp), err)
	}
	if err := root.Rename(tmp, tablespaceMapFile); err != nil {
		root.Remove(tmp)
		return fsErr("rename", filepath.Join(pgdata, tmp), err)
	}
	// The links PostgreSQL will (re)create from tablespace_map at startup,
	// made now so that pg_verifybackup finds the tablespaces' files.
	if len(newPath) == 0 {
		return nil
	}
	if err := root.MkdirAll("pg_tblspc", 0o700); err != nil {
		return fsErr("create directory", filepath.Join(pgdata, "pg_tblspc"), err)
	}
	for _, oid := range sortedKeys(newPath) {
		link := path.Join("pg_tblspc", oid)
		if err := root.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fsErr("remove", filepath.Join(pgdata, link), err)
		}
		if err := root.Symlink(newPath[oid], link); err != nil {
			return fsErr("create symbolic link", filepath.Join(pgdata, link), err)
		}
	}
	return nil
}

// gapWarning says when recovery to the latest point will stop at a hole in
// the archive although newer WAL exists beyond it: the restore is still the
// best possible, but the operator must know what is lost.
func gapWarning(cat *catalog.Catalog, t Target, w catalog.Window) string {
	if t.Time != nil || t.LSN != nil || t.XID != nil || t.Name != "" || t.Immediate {
		return ""
	}
	var newest repo.WALObject
	for _, o := range cat.WAL {
		if o.File.Kind != pgwal.KindSegment || o.File.Timeline < w.Timeline {
			continue
		}
		if pgwal.SegmentStart(o.File.SegNo(cat.SegSize), cat.SegSize) >= w.ToLSN && o.File.Name > newest.File.Name {
			newest = o
		}
	}
	if newest.Key == "" {
		return ""
	}
	missing := pgwal.SegmentName(w.Timeline, pgwal.SegNoOf(w.ToLSN, cat.SegSize), cat.SegSize)
	return fmt.Sprintf("the archive has a hole: %s is missing, so recovery stops at %s although WAL up to %s exists; restore that segment (from the old server's pg_wal) into the repository with wal-push first if you can", missing, w.ToLSN, newest.File.Name)
}
