package stream

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/walvault/walvault/archive/replconn"
	"github.com/walvault/walvault/internal/pgwal"
)

// replConn is what the streamer needs of a replication connection. The
// production implementation is pgReplConn; unit tests fake a server with it.
//
// Receive is called from one goroutine while SendStatus is called from
// another; no other method runs while a Receive is outstanding.
type replConn interface {
	Identify(ctx context.Context) (replconn.Cluster, error)
	// ReadSlot reports whether the physical slot exists and its restart
	// position and timeline (0 when unknown).
	ReadSlot(ctx context.Context, slot string) (exists bool, restart pgwal.LSN, restartTLI uint32, err error)
	CreateSlot(ctx context.Context, slot string) error
	TimelineHistory(ctx context.Context, tli uint32) ([]byte, error)
	// StartReplication enters copy mode at start on tli. When start is at or
	// past the end of tli it returns an *endOfTimeline.
	StartReplication(ctx context.Context, slot string, start pgwal.LSN, tli uint32) error
	// Receive returns the next message of the copy stream. The data is the
	// caller's to keep.
	Receive(ctx context.Context) (message, error)
	// SendStatus sends a standby status update.
	SendStatus(write, flush pgwal.LSN, now time.Time, replyRequested bool) error
	// EndCopy answers the server's CopyDone (end of the streamed timeline)
	// and returns the next timeline and where it starts.
	EndCopy(ctx context.Context) (next uint32, start pgwal.LSN, err error)
	Close(ctx context.Context) error
}

type msgKind int

const (
	msgXLogData msgKind = iota
	msgKeepalive
	msgEndOfTimeline // the server ended the copy: its timeline is over
)

type message struct {
	kind           msgKind
	walStart       pgwal.LSN
	data           []byte
	serverWALEnd   pgwal.LSN
	replyRequested bool
}

// endOfTimeline is START_REPLICATION's answer when the start position is at
// or past the end of the requested (historic) timeline.
type endOfTimeline struct {
	next  uint32
	start pgwal.LSN
}

func (e *endOfTimeline) Error() string {
	return fmt.Sprintf("timeline ended; timeline %d starts at %s", e.next, e.start)
}

// dialer opens a replication connection.
type dialer func(ctx context.Context) (replConn, error)

func pgDialer(connString string) dialer {
	return func(ctx context.Context) (replConn, error) {
		c, err := replconn.Connect(ctx, connString)
		if err != nil {
			return nil, err
		}
		return &pgReplConn{conn: c, connString: connString}, nil
	}
}

type pgReplConn struct {
	conn       *pgconn.PgConn
	connString string // for the SQL connection of readSlotSQL
	major      int    // set by Identify
}

func (c *pgReplConn) Identify(ctx context.Context) (replconn.Cluster, error) {
	cl, err := replconn.Identify(ctx, c.conn)
	c.major = cl.Major
	return cl, err
}

var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

func (c *pgReplConn) ReadSlot(ctx context.Context, slot string) (bool, pgwal.LSN, uint32, error) {
	if !slotName.MatchString(slot) {
		return false, 0, 0, fmt.Errorf("invalid replication slot name %q (lower-case letters, digits and underscores)", slot)
	}
	if c.major != 0 && c.major < 15 {
		return c.readSlotSQL(ctx, slot)
	}
	res, err := c.conn.Exec(ctx, "READ_REPLICATION_SLOT "+slot).ReadAll()
	if err != nil {
		return false, 0, 0, fmt.Errorf("READ_REPLICATION_SLOT %s: %w", slot, err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 3 {
		return false, 0, 0, fmt.Errorf("READ_REPLICATION_SLOT %s: unexpected result shape", slot)
	}
	row := res[0].Rows[0]
	if row[0] == nil { // the server answers a row of NULLs for a missing slot
		return false, 0, 0, nil
	}
	if string(row[0]) != "physical" {
		return false, 0, 0, fmt.Errorf("replication slot %q is a %s slot; walvault needs a physical one", slot, row[0])
	}
	var restart pgwal.LSN
	if row[1] != nil {
		if restart, err = pgwal.ParseLSN(string(row[1])); err != nil {
			return false, 0, 0, fmt.Errorf("READ_REPLICATION_SLOT %s: %w", slot, err)
		}
	}
	var tli uint32
	if row[2] != nil {
		fmt.Sscanf(string(row[2]), "%d", &tli)
	}
	return true, restart, tli, nil
}

// readSlotSQL reads the slot from pg_replication_slots over an ordinary
// connection: READ_REPLICATION_SLOT is new in PostgreSQL 15, and a physical
// walsender before it runs no SQL. The view has no restart timeline (0:
// unknown, which the streamer takes as the server's current one).
func (c *pgReplConn) readSlotSQL(ctx context.Context, slot string) (bool, pgwal.LSN, uint32, error) {
	what := fmt.Sprintf("read replication slot %s (PostgreSQL %d has no READ_REPLICATION_SLOT; walvault asks pg_replication_slots over an ordinary connection with the same settings, so the user must be allowed to connect to the database it names)", slot, c.major)
	sc, err := replconn.ConnectSQL(ctx, c.connString)
	if err != nil {
		return false, 0, 0, fmt.Errorf("%s: %w", what, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		sc.Close(cctx)
		cancel()
	}()
	res := sc.ExecParams(ctx, "SELECT slot_type, restart_lsn::text FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
		[][]byte{[]byte(slot)}, nil, nil, nil).Read()
	if res.Err != nil {
		return false, 0, 0, fmt.Errorf("%s: %w", what, res.Err)
	}
	if len(res.Rows) == 0 {
		return false, 0, 0, nil
	}
	row := res.Rows[0]
	if len(row) != 2 || row[0] == nil {
		return false, 0, 0, fmt.Errorf("%s: unexpected result shape", what)
	}
	if string(row[0]) != "physical" {
		return false, 0, 0, fmt.Errorf("replication slot %q is a %s slot; walvault needs a physical one", slot, row[0])
	}
	var restart pgwal.LSN
	if row[1] != nil {
		if restart, err = pgwal.ParseLSN(string(row[1])); err != nil {
			return false, 0, 0, fmt.Errorf("%s: %w", what, err)
		}
	}
	return true, restart, 0, nil
}

func (c *pgReplConn) CreateSlot(ctx context.Context, slot string) error {
	if !slotName.MatchString(slot) {
		return fmt.Errorf("invalid replication slot name %q (lower-case letters, digits and underscores)", slot)
	}
	_, err := pglogrepl.CreateReplicationSlot(ctx, c.conn, slot, "", pglogrepl.CreateReplicationSlotOptions{
		Mode: pglogrepl.PhysicalReplication, SnapshotAction: "RESERVE_WAL",
	})
	if err != nil {
		return fmt.Errorf("create replication slot %s: %w", slot, err)
	}
	return nil
}

func (c *pgReplConn) TimelineHistory(ctx context.Context, tli uint32) ([]byte, error) {
	res, err := pglogrepl.TimelineHistory(ctx, c.conn, int32(tli))
	if err != nil {
		return nil, fmt.Errorf("TIMELINE_HISTORY %d: %w", tli, err)
	}
	return res.Content, nil
}

func (c *pgReplConn) StartReplication(ctx context.Context, slot string, start pgwal.LSN, tli uint32) error {
	err := pglogrepl.StartReplication(ctx, c.conn, slot, pglogrepl.LSN(start), pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.PhysicalReplication, Timeline: int32(tli),
	})
	if next, pos, ok := pglogrepl.IsErrEndTimeline(err); ok {
		return &endOfTimeline{next: uint32(next), start: pgwal.LSN(pos)}
	}
	if err != nil {
		return fmt.Errorf("START_REPLICATION %s timeline %d: %w", start, tli, err)
	}
	return nil
}

func (c *pgReplConn) Receive(ctx context.Context) (message, error) {
	for {
		raw, err := c.conn.ReceiveMessage(ctx)
		if err != nil {
			return message{}, fmt.Errorf("receive: %w", err)
		}
		switch m := raw.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return message{}, fmt.Errorf("keepalive: %w", err)
				}
				return message{kind: msgKeepalive, serverWALEnd: pgwal.LSN(ka.ServerWALEnd), replyRequested: ka.ReplyRequested}, nil
			case pglogrepl.XLogDataByteID:
				x, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return message{}, fmt.Errorf("XLogData: %w", err)
				}
				// pgconn reuses its buffer for the next message.
				data := make([]byte, len(x.WALData))
				copy(data, x.WALData)
				return message{kind: msgXLogData, walStart: pgwal.LSN(x.WALStart), serverWALEnd: pgwal.LSN(x.ServerWALEnd), data: data}, nil
			}
		case *pgproto3.CopyDone:
			return message{kind: msgEndOfTimeline}, nil
		case *pgproto3.ErrorResponse:
			return message{}, pgconn.ErrorResponseToPgError(m)
		}
	}
}

func (c *pgReplConn) SendStatus(write, flush pgwal.LSN, now time.Time, reply bool) error {
	// flush is never 0 here: pglogrepl would replace it with write.
	return pglogrepl.SendStandbyStatusUpdate(context.Background(), c.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pglogrepl.LSN(write),
		WALFlushPosition: pglogrepl.LSN(flush),
		WALApplyPosition: pglogrepl.LSN(flush),
		ClientTime:       now,
		ReplyRequested:   reply,
	})
}

func (c *pgReplConn) EndCopy(ctx context.Context) (uint32, pgwal.LSN, error) {
	res, err := pglogrepl.SendStandbyCopyDone(ctx, c.conn)
	if err != nil {
		return 0, 0, fmt.Errorf("end of timeline: %w", err)
	}
	if res == nil || res.Timeline <= 0 {
		return 0, 0, fmt.Errorf("end of timeline: the server named no next timeline")
	}
	return uint32(res.Timeline), pgwal.LSN(res.LSN), nil
}

func (c *pgReplConn) Close(ctx context.Context) error { return c.conn.Close(ctx) }
