package check

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walvault/walvault/archive/replconn"
	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/units"
)

// setting is one row of pg_settings.
type setting struct {
	Value string
	// PendingRestart: the configuration file holds another value that takes
	// effect only after a restart.
	PendingRestart bool
}

type sender struct {
	ApplicationName string
	State           string
}

type slot struct {
	Name     string
	Type     string
	Active   bool
	Retained int64 // bytes of WAL the slot holds back on the server
}

type archiverStats struct {
	ArchivedCount    int64
	LastArchivedWAL  string
	LastArchivedTime time.Time
	FailedCount      int64
	LastFailedWAL    string
	LastFailedTime   time.Time
}

// postgresFacts is what check reads from the server.
type postgresFacts struct {
	Version          string
	SystemIdentifier uint64
	Major            int
	SegSize          int64
	InRecovery       bool
	Settings         map[string]setting
	Senders          []sender
	Slots            []slot
	Archiver         archiverStats
	// CurrentWALFile is the segment being written ("" on a standby).
	CurrentWALFile string
}

var checkedSettings = []string{"wal_level", "archive_mode", "archive_command", "archive_library", "archive_timeout", "max_wal_senders", "server_version", "server_version_num", "wal_segment_size"}

// sqlConn runs simple queries; every value comes back as text, NULL as "".
type sqlConn struct{ c *pgconn.PgConn }

func (s sqlConn) rows(ctx context.Context, sql string) ([][]string, error) {
	results, err := s.c.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(results) == 0 {
		return nil, nil
	}
	var out [][]string
	for _, r := range results[len(results)-1].Rows {
		row := make([]string, len(r))
		for i, v := range r {
			row[i] = string(v)
		}
		out = append(out, row)
	}
	return out, nil
}

func pgconnConnect(ctx context.Context, connString string) (sqlConn, error) {
	c, err := replconn.ConnectSQL(ctx, connString)
	return sqlConn{c}, err
}

func gatherPostgres(ctx context.Context, connString string) (*postgresFacts, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	q, err := pgconnConnect(cctx, connString)
	if err != nil {
		return nil, err
	}
	defer q.c.Close(context.Background())
	f := &postgresFacts{Settings: map[string]setting{}}

	rows, err := q.rows(cctx, "SELECT name, setting, pending_restart FROM pg_settings WHERE name IN ('"+strings.Join(checkedSettings, "','")+"')")
	if err != nil {
		return nil, fmt.Errorf("read pg_settings: %w", err)
	}
	for _, r := range rows {
		f.Settings[r[0]] = setting{Value: r[1], PendingRestart: r[2] == "t"}
	}
	f.Version = f.Settings["server_version"].Value
	if n, err := strconv.Atoi(f.Settings["server_version_num"].Value); err == nil {
		f.Major = n / 10000
	}
	// pg_settings gives wal_segment_size in bytes (its unit is B).
	if n, err := strconv.ParseInt(f.Settings["wal_segment_size"].Value, 10, 64); err == nil {
		f.SegSize = n
	}
	rows, err = q.rows(cctx, "SELECT system_identifier, pg_is_in_recovery() FROM pg_control_system()")
	if err != nil {
		return nil, fmt.Errorf("read pg_control_system(): %w (the role needs superuser or pg_monitor)", err)
	}
	if len(rows) == 1 {
		f.SystemIdentifier, _ = strconv.ParseUint(rows[0][0], 10, 64)
		f.InRecovery = rows[0][1] == "t"
	}
	if !f.InRecovery {
		// The segment is worked out here, not with pg_walfile_name: at a
		// segment boundary PostgreSQL 13–16 name the finished segment and
		// 17+ the next one. The timeline comes from the server's name.
		if rows, err = q.rows(cctx, "SELECT pg_current_wal_lsn()::text, pg_walfile_name(pg_current_wal_lsn())"); err == nil && len(rows) == 1 {
			f.CurrentWALFile = segmentAt(rows[0][0], rows[0][1], f.SegSize, 0)
		}
	}
	rows, err = q.rows(cctx, "SELECT coalesce(application_name, ''), coalesce(state, '') FROM pg_stat_replication")
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_replication: %w", err)
	}
	for _, r := range rows {
		f.Senders = append(f.Senders, sender{ApplicationName: r[0], State: r[1]})
	}
	retained := "0"
	if !f.InRecovery {
		retained = "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint"
	}
	rows, err = q.rows(cctx, "SELECT slot_name, slot_type, active, "+retained+" FROM pg_replication_slots")
	if err != nil {
		return nil, fmt.Errorf("read pg_replication_slots: %w", err)
	}
	for _, r := range rows {
		n, _ := strconv.ParseInt(r[3], 10, 64)
		f.Slots = append(f.Slots, slot{Name: r[0], Type: r[1], Active: r[2] == "t", Retained: n})
	}
	rows, err = q.rows(cctx, `SELECT archived_count, coalesce(last_archived_wal, ''),
		coalesce(extract(epoch FROM last_archived_time)::text, ''), failed_count,
		coalesce(last_failed_wal, ''), coalesce(extract(epoch FROM last_failed_time)::text, '')
		FROM pg_stat_archiver`)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_archiver: %w", err)
	}
	if len(rows) == 1 {
		r := rows[0]
		a := &f.Archiver
		a.ArchivedCount, _ = strconv.ParseInt(r[0], 10, 64)
		a.LastArchivedWAL = r[1]
		a.LastArchivedTime = epoch(r[2])
		a.FailedCount, _ = strconv.ParseInt(r[3], 10, 64)
		a.LastFailedWAL = r[4]
		a.LastFailedTime = epoch(r[5])
	}
	return f, nil
}

func epoch(s string) time.Time {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || s == "" {
		return time.Time{}
	}
	sec := int64(v)
	return time.Unix(sec, int64((v-float64(sec))*1e9)).UTC()
}

func judgeConnection(f *postgresFacts, err error) Result {
	r := Result{Name: "postgres"}
	if err != nil {
		r.Status = Critical
		r.Message = err.Error()
		r.Fix = "make the server reachable, or point walvault at it: pg-url in the config file or the libpq environment (PGHOST, PGPORT, PGUSER, ~/.pgpass); the role needs superuser or pg_monitor"
		return r
	}
	r.Message = fmt.Sprintf("PostgreSQL %s, system identifier %d", f.Version, f.SystemIdentifier)
	if f.InRecovery {
		r.Message += ", in recovery (a standby)"
	}
	return r
}

func judgeWALLevel(f *postgresFacts) Result {
	s := f.Settings["wal_level"]
	r := Result{Name: "wal_level", Message: "wal_level = " + s.Value}
	if s.Value != "replica" && s.Value != "logical" {
		r.Status = Critical
		r.Message += ": archived WAL cannot restore a base backup at this level"
		r.Fix = "ALTER SYSTEM SET wal_level = 'replica'; then restart PostgreSQL (systemctl restart postgresql)"
	} else if s.PendingRestart {
		r.Status = Warning
		r.Message += ", and postgresql.conf holds another value waiting for a restart"
		r.Fix = "restart PostgreSQL so the configured value applies, or set it back"
	}
	return r
}

// isWalvaultPush reports whether an archive_command hands %p to walvault
// wal-push.
func isWalvaultPush(cmd string) bool {
	return strings.Contains(cmd, "walvault") && strings.Contains(cmd, "wal-push") && strings.Contains(cmd, "%p")
}

// streamer returns how a walvault stream is connected, or "".
func streamer(f *postgresFacts, slotName string) string {
	for _, s := range f.Slots {
		if slotName != "" && s.Name == slotName && s.Active {
			return fmt.Sprintf("walvault stream is connected through slot %s", s.Name)
		}
	}
	for _, s := range f.Senders {
		if strings.Contains(s.ApplicationName, replconn.ApplicationName) && s.State == "streaming" {
			return fmt.Sprintf("walvault stream is connected (application_name %s)", s.ApplicationName)
		}
	}
	return ""
}

func (o *Options) archiveCommand() string {
	return "'" + strings.ReplaceAll(o.walvault("wal-push", "%p"), "'", "''") + "'"
}

func judgeArchiving(f *postgresFacts, o *Options) Result {
	r := Result{Name: "archiving"}
	mode, cmd := f.Settings["archive_mode"], f.Settings["archive_command"]
	on := mode.Value == "on" || mode.Value == "always"
	stream := streamer(f, o.Slot)
	lib := f.Settings["archive_library"].Value // PostgreSQL 15+
	switch {
	case on && lib != "" && stream == "":
		r.Status = Critical
		r.Message = fmt.Sprintf("archive_library = '%s' is set, so PostgreSQL archives with it and ignores archive_command", lib)
		r.Fix = "ALTER SYSTEM RESET archive_library; ALTER SYSTEM SET archive_command = " + o.archiveCommand() + "; then restart PostgreSQL"
	case on && isWalvaultPush(cmd.Value):
		r.Message = fmt.Sprintf("archive_mode = %s, archive_command = '%s'", mode.Value, cmd.Value)
		if stream != "" {
			r.Message += "; " + stream
		} else if t := f.Settings["archive_timeout"].Value; t == "0" {
			// Not a fault, but the recovery point a quiet server gets.
			r.Message += "; archive_timeout = 0, so on a quiet server the newest commits stay in pg_wal until a segment fills (archive_timeout = '1min' or walvault stream bound that)"
		}
		if f.InRecovery && mode.Value != "always" {
			r.Status = Warning
			r.Message += "; this server is a standby, which archives only with archive_mode = always"
			r.Fix = "run walvault check against the primary, or ALTER SYSTEM SET archive_mode = 'always' here and restart"
		}
	case stream != "":
		r.Message = stream + "; archive_mode = " + mode.Value
	case !on:
		r.Status = Critical
		r.Message = "archive_mode = " + mode.Value + " and no walvault stream is connected: no WAL reaches the repository"
		if mode.PendingRestart {
			r.Message = "archive_mode is set in postgresql.conf but waits for a restart, and no walvault stream is connected"
			r.Fix = "restart PostgreSQL (systemctl restart postgresql)"
			break
		}
		r.Fix = "ALTER SYSTEM SET archive_mode = 'on'; ALTER SYSTEM SET archive_command = " + o.archiveCommand() +
			"; then restart PostgreSQL (archive_mode needs a restart)"
		if o.Slot != "" {
			r.Fix += "\nor start the streamer: systemctl start walvault-stream@<instance>"
		}
	default:
		r.Status = Critical
		if cmd.Value == "" {
			r.Message = "archive_mode = " + mode.Value + " but archive_command is empty: WAL piles up in pg_wal and never reaches the repository"
		} else {
			r.Message = fmt.Sprintf("archive_command = '%s' does not hand %%p to walvault wal-push, and no walvault stream is connected", cmd.Value)
		}
		r.Fix = "ALTER SYSTEM SET archive_command = " + o.archiveCommand() + "; SELECT pg_reload_conf();"
	}
	return r
}

// judgeArchiver reads pg_stat_archiver: is archive_command failing now?
// ok is false when archiving is off (nothing to judge).
func judgeArchiver(f *postgresFacts, o *Options) (Result, bool) {
	mode := f.Settings["archive_mode"].Value
	if mode != "on" && mode != "always" {
		return Result{}, false
	}
	a := f.Archiver
	r := Result{Name: "archiver"}
	now := o.now()
	failing := !a.LastFailedTime.IsZero() && (a.LastArchivedTime.IsZero() || a.LastFailedTime.After(a.LastArchivedTime))
	switch {
	case failing:
		r.Status = Critical
		r.Message = fmt.Sprintf("archive_command is failing: %d failures, the last for %s %s", a.FailedCount, a.LastFailedWAL, ago(now.Sub(a.LastFailedTime)))
		if a.LastArchivedWAL != "" {
			r.Message += fmt.Sprintf("; last success %s %s", a.LastArchivedWAL, ago(now.Sub(a.LastArchivedTime)))
		} else {
			r.Message += "; no success since the statistics were reset"
		}
		seg := a.LastFailedWAL
		if seg == "" {
			seg = "<segment>"
		}
		manual := strings.NewReplacer("%p", "pg_wal/"+seg, "%f", seg, "%%", "%").Replace(f.Settings["archive_command"].Value)
		r.Fix = "the reason is in PostgreSQL's log (grep 'archive command failed'); to see it, run the command as postgres in the data directory: " + manual
	case a.ArchivedCount == 0:
		r.Message = "nothing archived since the statistics were reset (a new or quiet server)"
	default:
		r.Message = fmt.Sprintf("last archived %s %s", a.LastArchivedWAL, ago(now.Sub(a.LastArchivedTime)))
		if a.FailedCount > 0 {
			r.Message += fmt.Sprintf("; %d earlier failures, the last %s, none since", a.FailedCount, ago(now.Sub(a.LastFailedTime)))
		}
	}
	return r, true
}

func judgeWALSenders(f *postgresFacts) Result {
	r := Result{Name: "max_wal_senders"}
	n, _ := strconv.Atoi(f.Settings["max_wal_senders"].Value)
	used := len(f.Senders)
	r.Message = fmt.Sprintf("max_wal_senders = %d, %d in use", n, used)
	switch {
	case n == 0:
		r.Status = Critical
		r.Message += ": walvault backup and walvault stream need a replication connection"
		r.Fix = "ALTER SYSTEM SET max_wal_senders = 5; then restart PostgreSQL"
	case used >= n:
		r.Status = Warning
		r.Message += ": none free, the next walvault backup cannot connect"
		r.Fix = fmt.Sprintf("ALTER SYSTEM SET max_wal_senders = %d; then restart PostgreSQL", n+2)
	}
	return r
}

func judgeSlot(f *postgresFacts, o *Options) Result {
	r := Result{Name: "slot"}
	for _, s := range f.Slots {
		if s.Name != o.Slot {
			continue
		}
		if s.Type != "physical" {
			r.Status = Critical
			r.Message = fmt.Sprintf("slot %s is a %s slot; walvault stream needs a physical one", s.Name, s.Type)
			r.Fix = fmt.Sprintf("SELECT pg_drop_replication_slot('%s'); then %s", s.Name, o.walvault("stream", "--slot", s.Name, "--create-slot", "--spool DIR"))
			return r
		}
		if !s.Active {
			r.Status = Critical
			r.Message = fmt.Sprintf("slot %s exists but nothing streams from it: it holds %s of WAL on this server, and the pile grows until the disk is full", s.Name, units.Bytes(s.Retained))
			r.Fix = "start walvault stream (systemctl start walvault-stream@<instance>, or " + o.walvault("stream", "--slot", s.Name, "--spool DIR") +
				fmt.Sprintf(")\nor, if this host no longer streams: SELECT pg_drop_replication_slot('%s');", s.Name)
			return r
		}
		r.Message = fmt.Sprintf("slot %s is active, holding %s of WAL", s.Name, units.Bytes(s.Retained))
		return r
	}
	r.Status = Critical
	r.Message = fmt.Sprintf("replication slot %s does not exist: walvault stream cannot start", o.Slot)
	r.Fix = fmt.Sprintf("SELECT pg_create_physical_replication_slot('%s', true);\nor start the streamer once with --create-slot: %s",
		o.Slot, o.walvault("stream", "--slot", o.Slot, "--create-slot", "--spool DIR"))
	return r
}

// segmentAt names the segment holding lsn (or the byte before it, with
// back = 1) on the timeline of the server-given file name; "" when either
// does not parse.
func segmentAt(lsnText, name string, segSize int64, back pgwal.LSN) string {
	lsn, err := pgwal.ParseLSN(lsnText)
	fn, ferr := pgwal.ParseFileName(name)
	if err != nil || ferr != nil || !pgwal.ValidSegmentSize(segSize) || lsn < back {
		return ""
	}
	return pgwal.SegmentName(fn.Timeline, pgwal.SegNoOf(lsn-back, segSize), segSize)
}

// currentSegment parses CurrentWALFile.
func (f *postgresFacts) currentSegment() (pgwal.FileName, bool) {
	if f == nil || f.CurrentWALFile == "" {
		return pgwal.FileName{}, false
	}
	fn, err := pgwal.ParseFileName(f.CurrentWALFile)
	return fn, err == nil && fn.Kind == pgwal.KindSegment
}
