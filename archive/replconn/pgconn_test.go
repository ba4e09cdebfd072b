package replconn_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walvault/walvault/archive/replconn"
	"github.com/walvault/walvault/internal/pgtest"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"16MB", 16 << 20, true},
		{"1MB", 1 << 20, true},
		{"1GB", 1 << 30, true},
		{"8kB", 8 << 10, true},
		{"512B", 512, true},
		{"2TB", 2 << 40, true},
		{"1024", 1024, true},
		{"", 0, false},
		{"MB", 0, false},
		{"16 MB", 0, false},
		{"16mb", 0, false},
		{"16KB", 0, false},
		{"-1MB", 0, false},
		{"99999999999TB", 0, false},
		{"1234567890123456789", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := replconn.ParseSize(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"16MB", "1GB", "8kB", "0B", "1TB", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := replconn.ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		// Whatever parses prints back to an equal value.
		for _, u := range []struct {
			suffix string
			shift  uint
		}{{"TB", 40}, {"GB", 30}, {"MB", 20}, {"kB", 10}, {"B", 0}} {
			if n%(1<<u.shift) == 0 {
				back, err := replconn.ParseSize(strconv.FormatInt(n>>u.shift, 10) + u.suffix)
				if err != nil || back != n {
					t.Fatalf("ParseSize(%q) = %d, round trip gave %d, %v", s, n, back, err)
				}
				break
			}
		}
	})
}

// closedPort returns a 127.0.0.1 port nothing listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestConnectErrorsHidePassword(t *testing.T) {
	port := closedPort(t)
	const pw = "s3cr%t'pw"
	tests := []struct {
		name, conn string
	}{
		{"url", fmt.Sprintf("postgres://alice:%s@127.0.0.1:%d/db?sslmode=disable", "s3cr%25t%27pw", port)},
		{"url query", fmt.Sprintf("postgres://alice@127.0.0.1:%d/db?sslmode=disable&password=%s", port, "s3cr%25t%27pw")},
		{"kv quoted", fmt.Sprintf(`host=127.0.0.1 port=%d user=alice password='s3cr%%t\'pw' sslmode=disable`, port)},
		{"kv plain", fmt.Sprintf(`host=127.0.0.1 port=%d user=alice password=s3cr%%t'pw sslmode=disable`, port)},
		{"url bad port", "postgres://alice:s3cr%25t%27pw@127.0.0.1:notaport/db"},
		{"kv unterminated", `host=127.0.0.1 password='s3cr%t\'pw`},
		{"url bad escape", "postgres://alice:s3cr%t'pw@127.0.0.1/db?%zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := replconn.Connect(ctx, tt.conn)
			if err == nil {
				conn.Close(ctx)
				t.Fatal("connected to a closed port")
			}
			if !errors.Is(err, replconn.ErrConnect) {
				t.Errorf("error does not wrap ErrConnect: %v", err)
			}
			for _, secret := range []string{pw, "s3cr%25t%27pw", `s3cr%t\'pw`, "s3cr"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error contains the password (%q): %v", secret, err)
				}
			}
			t.Log(err)
		})
	}
}

func TestConnectErrorHidesEnvPassword(t *testing.T) {
	t.Setenv("PGPASSWORD", "envsecret-42")
	t.Setenv("PGHOST", "127.0.0.1")
	t.Setenv("PGPORT", strconv.Itoa(closedPort(t)))
	_, err := replconn.Connect(context.Background(), "")
	if !errors.Is(err, replconn.ErrConnect) || strings.Contains(err.Error(), "envsecret") {
		t.Fatalf("err = %v", err)
	}
}

func TestConnectCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := replconn.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d", closedPort(t)))
	if !errors.Is(err, replconn.ErrConnect) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrConnect and context.Canceled", err)
	}
}

func TestAgainstServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := pgtest.Start(t, pgtest.Options{
		HBA: []string{
			"host all alice 127.0.0.1/32 scram-sha-256",
			"host replication alice 127.0.0.1/32 scram-sha-256",
		},
	})
	srv.SQL(t, "CREATE ROLE alice LOGIN REPLICATION PASSWORD 'right-horse-battery'")
	ctx := context.Background()

	t.Run("identify", func(t *testing.T) {
		conn, err := replconn.Connect(ctx, srv.ConnString)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		c, err := replconn.Identify(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		wantSysID := srv.SQL(t, "SELECT system_identifier FROM pg_control_system()")
		if strconv.FormatUint(c.SystemIdentifier, 10) != wantSysID {
			t.Errorf("SystemIdentifier = %d, want %s", c.SystemIdentifier, wantSysID)
		}
		wantNum, _ := strconv.Atoi(srv.SQL(t, "SHOW server_version_num"))
		if c.ServerVersionNum != wantNum || c.Major != wantNum/10000 {
			t.Errorf("version = %d/%d, want %d", c.ServerVersionNum, c.Major, wantNum)
		}
		if c.WALSegmentSize != 16<<20 || c.Timeline != 1 || c.XLogPos == 0 {
			t.Errorf("cluster = %+v", c)
		}
		if got := conn.ParameterStatus("application_name"); got != replconn.ApplicationName {
			t.Errorf("application_name = %q", got)
		}
		if v, err := replconn.Show(ctx, conn, "wal_level"); err != nil || v != "replica" {
			t.Errorf("SHOW wal_level = %q, %v", v, err)
		}
		if _, err := replconn.Show(ctx, conn, "x; DROP"); err == nil {
			t.Error("Show accepted a bad name")
		}
	})

	t.Run("environment", func(t *testing.T) {
		t.Setenv("PGHOST", srv.Socket)
		t.Setenv("PGPORT", strconv.Itoa(srv.Port))
		t.Setenv("PGUSER", "postgres")
		t.Setenv("PGSSLMODE", "disable")
		conn, err := replconn.Connect(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := replconn.Identify(ctx, conn); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("password", func(t *testing.T) {
		good := fmt.Sprintf("postgres://alice:right-horse-battery@127.0.0.1:%d/postgres?sslmode=disable&application_name=mine", srv.Port)
		conn, err := replconn.Connect(ctx, good)
		if err != nil {
			t.Fatal(err)
		}
		if got := conn.ParameterStatus("application_name"); got != "mine" {
			t.Errorf("application_name = %q, want the one given", got)
		}
		conn.Close(ctx)

		bad := fmt.Sprintf("host=127.0.0.1 port=%d user=alice password=wrong-horse-battery sslmode=disable", srv.Port)
		_, err = replconn.Connect(ctx, bad)
		if !errors.Is(err, replconn.ErrConnect) {
			t.Fatalf("wrong password: err = %v", err)
		}
		if strings.Contains(err.Error(), "wrong-horse") || !strings.Contains(err.Error(), "password authentication failed") {
			t.Errorf("wrong password: %v", err)
		}
	})
}
