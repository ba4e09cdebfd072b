package basebackup

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/walvault/walvault/internal/pgwal"
)

// The replication protocol is spoken here rather than through pglogrepl's
// StartBaseBackup/FinishBaseBackup because those lose what a backup needs:
// BaseBackupTablespace.Size is an int8 (sizes are truncated), the row of the
// main data directory is dropped (so no total for progress), an error while
// reading the tablespace list becomes "unexpected response type", and on
// PostgreSQL 15+ FinishBaseBackup does not expect the CopyDone that precedes
// the end position.

// command builds the BASE_BACKUP command: the parenthesized syntax from
// PostgreSQL 15, the legacy keyword syntax before. WAL is never included
// (walvault archives WAL itself) and the server never waits for archiving
// (Run waits, with an error that says what is wrong). incremental (from
// PostgreSQL 17, after UPLOAD_MANIFEST) asks for an incremental backup.
func command(major int, label string, fast bool, maxRate int32, incremental bool) string {
	quoted := "'" + strings.ReplaceAll(label, "'", "''") + "'"
	if major >= 15 {
		parts := []string{"LABEL " + quoted, "PROGRESS"}
		if fast {
			parts = append(parts, "CHECKPOINT 'fast'")
		}
		parts = append(parts, "WAIT false")
		if maxRate > 0 {
			parts = append(parts, "MAX_RATE "+strconv.Itoa(int(maxRate)))
		}
		parts = append(parts, "TABLESPACE_MAP", "MANIFEST 'yes'", "MANIFEST_CHECKSUMS 'CRC32C'")
		if incremental && major >= 17 {
			parts = append(parts, "INCREMENTAL")
		}
		return "BASE_BACKUP (" + strings.Join(parts, ", ") + ")"
	}
	parts := []string{"BASE_BACKUP", "LABEL", quoted, "PROGRESS"}
	if fast {
		parts = append(parts, "FAST")
	}
	parts = append(parts, "NOWAIT")
	if maxRate > 0 {
		parts = append(parts, "MAX_RATE", strconv.Itoa(int(maxRate)))
	}
	parts = append(parts, "TABLESPACE_MAP", "MANIFEST 'yes'", "MANIFEST_CHECKSUMS 'CRC32C'")
	return strings.Join(parts, " ")
}

// uploadManifest sends a prior backup's backup_manifest (PostgreSQL 17
// and later), which makes the next BASE_BACKUP on this connection able to
// be INCREMENTAL against it.
func uploadManifest(ctx context.Context, conn *pgconn.PgConn, manifest []byte) error {
	if _, err := conn.CopyFrom(ctx, bytes.NewReader(manifest), "UPLOAD_MANIFEST"); err != nil {
		return fmt.Errorf("UPLOAD_MANIFEST: %w", err)
	}
	return nil
}

// tablespace is one row of the tablespace list BASE_BACKUP sends first.
type tablespace struct {
	OID      uint32 // 0 for the main data directory
	Location string // "" for the main data directory
	SizeKB   int64  // estimate; -1 when the server sent none
}

// position is a WAL position result (start or end of the backup).
type position struct {
	LSN      pgwal.LSN
	Timeline uint32
}

// start sends BASE_BACKUP and reads the start position and the tablespace
// list, leaving the connection at the start of the copy data.
func start(ctx context.Context, conn *pgconn.PgConn, cmd string) (position, []tablespace, error) {
	conn.Frontend().SendQuery(&pgproto3.Query{String: cmd})
	if err := conn.Frontend().Flush(); err != nil {
		return position{}, nil, fmt.Errorf("send BASE_BACKUP: %w", err)
	}
	pos, err := readPosition(ctx, conn)
	if err != nil {
		return position{}, nil, fmt.Errorf("BASE_BACKUP start: %w", err)
	}
	rows, err := readResultSet(ctx, conn, "spcoid", "spclocation", "size")
	if err != nil {
		return pos, nil, fmt.Errorf("BASE_BACKUP tablespace list: %w", err)
	}
	var tss []tablespace
	for _, row := range rows {
		ts := tablespace{SizeKB: -1}
		if row[0] != nil {
			oid, err := strconv.ParseUint(*row[0], 10, 32)
			if err != nil || oid == 0 {
				return pos, nil, fmt.Errorf("BASE_BACKUP tablespace list: bad oid %q", *row[0])
			}
			ts.OID = uint32(oid)
		}
		if row[1] != nil {
			ts.Location = *row[1]
		}
		if row[2] != nil {
			kb, err := strconv.ParseInt(*row[2], 10, 64)
			if err != nil || kb < 0 {
				return pos, nil, fmt.Errorf("BASE_BACKUP tablespace list: bad size %q", *row[2])
			}
			ts.SizeKB = kb
		}
		tss = append(tss, ts)
	}
	return pos, tss, nil
}

// finish reads what follows the copy data: the end position, then the
// command's completion.
func finish(ctx context.Context, conn *pgconn.PgConn) (position, error) {
	pos, err := readPosition(ctx, conn)
	if err != nil {
		return pos, fmt.Errorf("BASE_BACKUP end: %w", err)
	}
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return pos, fmt.Errorf("BASE_BACKUP end: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			return pos, nil
		case *pgproto3.CommandComplete, *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		case *pgproto3.ErrorResponse:
			return pos, fmt.Errorf("BASE_BACKUP end: %w", pgconn.ErrorResponseToPgError(m))
		default:
			return pos, fmt.Errorf("BASE_BACKUP end: unexpected %T", msg)
		}
	}
}

func readPosition(ctx context.Context, conn *pgconn.PgConn) (position, error) {
	rows, err := readResultSet(ctx, conn, "recptr", "tli")
	if err != nil {
		return position{}, err
	}
	if len(rows) != 1 || rows[0][0] == nil || rows[0][1] == nil {
		return position{}, fmt.Errorf("want one WAL position row, got %d", len(rows))
	}
	lsn, err := pgwal.ParseLSN(*rows[0][0])
	if err != nil {
		return position{}, err
	}
	tli, err := strconv.ParseUint(*rows[0][1], 10, 32)
	if err != nil || tli == 0 {
		return position{}, fmt.Errorf("bad timeline %q", *rows[0][1])
	}
	return position{LSN: lsn, Timeline: uint32(tli)}, nil
}

// readResultSet reads one result set (RowDescription, DataRows,
// CommandComplete) whose columns must be named cols. NULL is a nil pointer.
func readResultSet(ctx context.Context, conn *pgconn.PgConn, cols ...string) ([][]*string, error) {
	var rows [][]*string
	described := false
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.RowDescription:
			if len(m.Fields) != len(cols) {
				return nil, fmt.Errorf("want columns %v, got %d columns", cols, len(m.Fields))
			}
			for i, f := range m.Fields {
				if string(f.Name) != cols[i] {
					return nil, fmt.Errorf("want columns %v, column %d is %q", cols, i, f.Name)
				}
			}
			described = true
		case *pgproto3.DataRow:
			if !described || len(m.Values) != len(cols) {
				return nil, fmt.Errorf("unexpected data row of %d values", len(m.Values))
			}
			row := make([]*string, len(cols))
			for i, v := range m.Values {
				if v != nil {
					s := string(v)
					row[i] = &s
				}
			}
			rows = append(rows, row)
		case *pgproto3.CommandComplete:
			if !described {
				return nil, fmt.Errorf("result set without columns")
			}
			return rows, nil
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		case *pgproto3.ErrorResponse:
			return nil, pgconn.ErrorResponseToPgError(m)
		default:
			return nil, fmt.Errorf("unexpected %T", msg)
		}
	}
}

// archiveSink receives the archives of a backup in order. write must not
// keep p after returning.
type archiveSink interface {
	beginArchive(name, tablespacePath string) error
	write(p []byte) error
	endArchive() error
}

// streamV15 reads the single copy stream of PostgreSQL 15+, whose messages
// carry their own framing (DecodeCopyMessage), through the CopyDone that
// ends it.
func streamV15(ctx context.Context, conn *pgconn.PgConn, sink archiveSink) error {
	started, open, manifest := false, false, false
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return fmt.Errorf("receive base backup: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyOutResponse:
			if started {
				return fmt.Errorf("receive base backup: second CopyOutResponse")
			}
			started = true
		case *pgproto3.CopyData:
			if !started {
				return fmt.Errorf("receive base backup: CopyData before CopyOutResponse")
			}
			cm, err := DecodeCopyMessage(m.Data)
			if err != nil {
				return err
			}
			switch cm.Type {
			case MsgNewArchive, MsgManifest:
				if manifest {
					return fmt.Errorf("%w: %q after the manifest", ErrBadCopyMessage, cm.Type)
				}
				if open {
					if err := sink.endArchive(); err != nil {
						return err
					}
				}
				name := cm.ArchiveName
				if cm.Type == MsgManifest {
					name, manifest = manifestArchive, true
				}
				if err := sink.beginArchive(name, cm.TablespacePath); err != nil {
					return err
				}
				open = true
			case MsgData:
				if !open {
					return fmt.Errorf("%w: data before the first archive", ErrBadCopyMessage)
				}
				if err := sink.write(cm.Data); err != nil {
					return err
				}
			case MsgProgress:
				// Run counts the bytes itself, also for older servers.
			}
		case *pgproto3.CopyDone:
			if !manifest {
				return fmt.Errorf("receive base backup: stream ended without a backup manifest")
			}
			return sink.endArchive()
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("receive base backup: %w", pgconn.ErrorResponseToPgError(m))
		default:
			return fmt.Errorf("receive base backup: unexpected %T", msg)
		}
	}
}

// streamLegacy reads the copy streams of PostgreSQL 13 and 14: one plain
// CopyOut per tablespace, in the order of the tablespace list, then one for
// the backup manifest. Exercised against real PostgreSQL 13 and 14, with a
// tablespace, by the end-to-end TestVersions (e2e/versions_test.go).
func streamLegacy(ctx context.Context, conn *pgconn.PgConn, tss []tablespace, sink archiveSink) error {
	for i := 0; i <= len(tss); {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return fmt.Errorf("receive base backup: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyOutResponse:
			name, path := manifestArchive, ""
			if i < len(tss) {
				name, path = "base.tar", tss[i].Location
				if tss[i].OID != 0 {
					name = strconv.FormatUint(uint64(tss[i].OID), 10) + ".tar"
				}
			}
			if err := sink.beginArchive(name, path); err != nil {
				return err
			}
		case *pgproto3.CopyData:
			if err := sink.write(m.Data); err != nil {
				return err
			}
		case *pgproto3.CopyDone:
			if err := sink.endArchive(); err != nil {
				return err
			}
			i++
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("receive base backup: %w", pgconn.ErrorResponseToPgError(m))
		default:
			return fmt.Errorf("receive base backup: unexpected %T", msg)
		}
	}
	return nil
}
