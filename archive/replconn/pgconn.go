package replconn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/walvault/walvault/internal/pgwal"
)

// ErrConnect wraps every failure to open a connection (bad connection
// string, unreachable server, authentication refused, no replication
// privilege, …).
var ErrConnect = errors.New("cannot connect to PostgreSQL")

// ApplicationName is set on connections whose connection string names none,
// so that pg_stat_replication and the server log show who is connected.
const ApplicationName = "walvault"

// Connect opens a physical replication connection. connString is a libpq
// URL or key=value string, or "" to rely on the PG* environment variables
// and ~/.pgpass alone.
func Connect(ctx context.Context, connString string) (*pgconn.PgConn, error) {
	return connect(ctx, connString, 0)
}

// ConnectBulk is Connect for a connection that receives a bulk stream (a
// base backup): reads from the socket go through a buffer of readBuffer
// bytes, so the hundreds of megabytes of CopyData cost a few thousand read
// system calls rather than tens of thousands (the driver reads at most
// 8 KiB at a time, or one message). A read never waits to fill the buffer:
// it returns what one system call brought.
func ConnectBulk(ctx context.Context, connString string) (*pgconn.PgConn, error) {
	return connect(ctx, connString, readBuffer)
}

const readBuffer = 256 << 10

func connect(ctx context.Context, connString string, bufSize int) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(connString)
	if err != nil {
		return nil, connectError(ctx, err, secrets(connString, ""))
	}
	// Physical replication, whatever the string said: "database" would make a
	// logical walsender, and BASE_BACKUP needs the physical one.
	cfg.RuntimeParams["replication"] = "true"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = ApplicationName
	}
	if bufSize > 0 {
		cfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
			return pgproto3.NewFrontend(bufio.NewReaderSize(r, bufSize), w)
		}
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(ctx, err, secrets(connString, cfg.Password))
	}
	return conn, nil
}

// ConnectSQL opens an ordinary (non-replication) connection, for callers
// that read settings and statistics views with SQL (walvault check).
// Errors wrap ErrConnect and contain no password, as Connect's.
func ConnectSQL(ctx context.Context, connString string) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(connString)
	if err != nil {
		return nil, connectError(ctx, err, secrets(connString, ""))
	}
	delete(cfg.RuntimeParams, "replication")
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = ApplicationName + "-check"
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(ctx, err, secrets(connString, cfg.Password))
	}
	return conn, nil
}

// connectError turns a driver error into one that wraps ErrConnect (and the
// context's error, if the context ended) and whose message contains none of
// the secrets. The driver's error is not wrapped: pgconn.ConnectError carries
// the whole Config, password included, for anyone who unwraps it.
func connectError(ctx context.Context, err error, secrets []string) error {
	msg := scrub(err.Error(), secrets)
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w: %w: %s", ErrConnect, cerr, msg)
	}
	return fmt.Errorf("%w: %s", ErrConnect, msg)
}

// scrub replaces every occurrence of each secret in s.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
}

var kvPassword = regexp.MustCompile(`(?:^|\s)(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// secrets lists every form in which a password may appear in an error
// message: the parsed password, PGPASSWORD, and what looks like a password
// in the connection string, raw and decoded. The string is examined by hand
// because it may be exactly the one the driver could not parse.
func secrets(connString, parsed string) []string {
	out := []string{parsed, os.Getenv("PGPASSWORD"), os.Getenv("PGSSLPASSWORD")}
	add := func(raw string) {
		out = append(out, raw)
		if dec, err := url.PathUnescape(raw); err == nil {
			out = append(out, dec)
		}
		if dec, err := url.QueryUnescape(raw); err == nil {
			out = append(out, dec)
		}
	}
	if rest, ok := cutAnyPrefix(connString, "postgres://", "postgresql://"); ok {
		if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
			if _, pw, ok := strings.Cut(rest[:i], ":"); ok {
				add(pw)
			}
		}
		if _, query, ok := strings.Cut(rest, "?"); ok {
			for _, kv := range strings.Split(query, "&") {
				k, v, _ := strings.Cut(kv, "=")
				if k, err := url.QueryUnescape(k); err == nil && (k == "password" || k == "sslpassword") {
					add(v)
				}
			}
		}
		return out
	}
	for _, m := range kvPassword.FindAllStringSubmatch(connString, -1) {
		v := m[1]
		out = append(out, v)
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = v[1 : len(v)-1]
			out = append(out, v, strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(v))
		}
	}
	return out
}

func cutAnyPrefix(s string, prefixes ...string) (string, bool) {
	for _, p := range prefixes {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return rest, true
		}
	}
	return s, false
}

// Cluster describes the server a replication connection reaches.
type Cluster struct {
	SystemIdentifier uint64
	Timeline         uint32
	XLogPos          pgwal.LSN
	WALSegmentSize   int64
	ServerVersionNum int // 150018
	Major            int // 15
}

// MinMajor is the oldest PostgreSQL major version supported: the first
// whose BASE_BACKUP can send a backup manifest.
const MinMajor = 13

// Identify runs IDENTIFY_SYSTEM and reads the settings a repository is bound
// to.
func Identify(ctx context.Context, conn *pgconn.PgConn) (Cluster, error) {
	var c Cluster
	isr, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		return c, fmt.Errorf("IDENTIFY_SYSTEM: %w", err)
	}
	if c.SystemIdentifier, err = strconv.ParseUint(isr.SystemID, 10, 64); err != nil {
		return c, fmt.Errorf("IDENTIFY_SYSTEM: bad system identifier %q", isr.SystemID)
	}
	if isr.Timeline <= 0 {
		return c, fmt.Errorf("IDENTIFY_SYSTEM: bad timeline %d", isr.Timeline)
	}
	c.Timeline = uint32(isr.Timeline)
	c.XLogPos = pgwal.LSN(isr.XLogPos)

	v, err := Show(ctx, conn, "server_version_num")
	if err != nil {
		return c, err
	}
	if c.ServerVersionNum, err = strconv.Atoi(v); err != nil || c.ServerVersionNum < 100000 {
		return c, fmt.Errorf("unsupported server_version_num %q: walvault needs PostgreSQL %d or later", v, MinMajor)
	}
	c.Major = c.ServerVersionNum / 10000
	if c.Major < MinMajor {
		return c, fmt.Errorf("PostgreSQL %d is not supported: walvault needs %d or later (backup manifests)", c.Major, MinMajor)
	}

	v, err = Show(ctx, conn, "wal_segment_size")
	if err != nil {
		return c, err
	}
	if c.WALSegmentSize, err = ParseSize(v); err != nil {
		return c, fmt.Errorf("wal_segment_size: %w", err)
	}
	if !pgwal.ValidSegmentSize(c.WALSegmentSize) {
		return c, fmt.Errorf("wal_segment_size %q is not a power of two from 1MB to 1GB", v)
	}
	return c, nil
}

var settingName = regexp.MustCompile(`^[a-z_][a-z0-9_.]*$`)

// Show returns the value of a server setting (SHOW works on replication
// connections since PostgreSQL 10).
func Show(ctx context.Context, conn *pgconn.PgConn, name string) (string, error) {
	if !settingName.MatchString(name) {
		return "", fmt.Errorf("invalid setting name %q", name)
	}
	results, err := conn.Exec(ctx, "SHOW "+name).ReadAll()
	if err != nil {
		return "", fmt.Errorf("SHOW %s: %w", name, err)
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != 1 {
		return "", fmt.Errorf("SHOW %s: unexpected result shape", name)
	}
	return string(results[0].Rows[0][0]), nil
}

// ParseSize parses a memory-unit setting as SHOW prints it ("16MB", "1GB",
// "8kB", "512B") into bytes. Units are PostgreSQL's: powers of 1024, and
// case-sensitive ("kB", not "KB").
func ParseSize(s string) (int64, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 18 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	var shift uint
	switch s[i:] {
	case "B", "":
		shift = 0
	case "kB":
		shift = 10
	case "MB":
		shift = 20
	case "GB":
		shift = 30
	case "TB":
		shift = 40
	default:
		return 0, fmt.Errorf("invalid size %q: unknown unit %q", s, s[i:])
	}
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n << shift, nil
}
