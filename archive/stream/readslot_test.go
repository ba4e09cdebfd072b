package stream

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walvault/walvault/internal/pgtest"
	"github.com/walvault/walvault/internal/pgwal"
)

// ReadSlot against a real server of every supported major: PostgreSQL 13
// and 14 have no READ_REPLICATION_SLOT (and run no SQL on a physical
// walsender), so the slot comes from pg_replication_slots there. Majors not
// installed (scripts/fetch-postgres.sh) are skipped, except under CI.
func TestReadSlotEveryMajor(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	for major := 13; major <= 18; major++ {
		t.Run(fmt.Sprintf("PG%d", major), func(t *testing.T) {
			bin := pgtest.MajorBinDir(major)
			if bin == "" {
				why := fmt.Sprintf("PostgreSQL %d is not installed: run scripts/fetch-postgres.sh", major)
				if os.Getenv("CI") != "" {
					t.Fatal(why)
				}
				t.Skip(why)
			}
			srv := pgtest.Start(t, pgtest.Options{BinDir: bin, Settings: []string{"wal_level = logical"}})
			ctx := context.Background()
			conn, err := pgDialer(srv.ConnString)(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			cl, err := conn.Identify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if cl.Major != major {
				t.Fatalf("server is PostgreSQL %d, want %d", cl.Major, major)
			}

			exists, restart, _, err := conn.ReadSlot(ctx, "walvault")
			if err != nil || exists || restart != 0 {
				t.Fatalf("ReadSlot of a missing slot: exists %v, restart %s, err %v; want false, 0, nil", exists, restart, err)
			}
			if err := conn.CreateSlot(ctx, "walvault"); err != nil {
				t.Fatal(err)
			}
			exists, restart, tli, err := conn.ReadSlot(ctx, "walvault")
			if err != nil || !exists {
				t.Fatalf("ReadSlot after CreateSlot: exists %v, err %v", exists, err)
			}
			want := slotRestart(t, srv.ConnString, "walvault")
			if restart != want || restart == 0 {
				t.Errorf("ReadSlot: restart %s, want pg_replication_slots' %s", restart, want)
			}
			if tli != 0 && tli != cl.Timeline {
				t.Errorf("ReadSlot: restart timeline %d, want 0 (unknown) or %d", tli, cl.Timeline)
			}

			sql, err := pgconn.Connect(ctx, srv.ConnString)
			if err != nil {
				t.Fatal(err)
			}
			defer sql.Close(ctx)
			if _, err := sql.Exec(ctx, "SELECT pg_create_logical_replication_slot('logical', 'pgoutput')").ReadAll(); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := conn.ReadSlot(ctx, "logical"); err == nil {
				t.Errorf("ReadSlot of a logical slot succeeded, want an error")
			}
		})
	}
}

func slotRestart(t *testing.T, connString, slot string) pgwal.LSN {
	t.Helper()
	ctx := context.Background()
	c, err := pgconn.Connect(ctx, connString)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	res := c.ExecParams(ctx, "SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
		[][]byte{[]byte(slot)}, nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 {
		t.Fatalf("pg_replication_slots: %v, %d rows", res.Err, len(res.Rows))
	}
	l, err := pgwal.ParseLSN(string(res.Rows[0][0]))
	if err != nil {
		t.Fatal(err)
	}
	return l
}
