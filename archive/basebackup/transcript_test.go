package basebackup

// The protocol readers against scripted servers: the only coverage of the
// PostgreSQL 13/14 path on a machine with PostgreSQL 15 alone, and of
// server misbehaviour no real server produces on demand.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/walvault/walvault/internal/repotest"
	"github.com/walvault/walvault/repo"
)

// scriptedConn returns a connection whose server, on the first query,
// answers with script and then waits for the connection to close.
func scriptedConn(t *testing.T, script []pgproto3.BackendMessage) *pgconn.PgConn {
	t.Helper()
	client, server := net.Pipe()
	go func() {
		be := pgproto3.NewBackend(server, server)
		if _, err := be.Receive(); err != nil {
			return
		}
		for _, m := range script {
			be.Send(m)
		}
		if err := be.Flush(); err != nil {
			return
		}
		for {
			if _, err := be.Receive(); err != nil {
				server.Close()
				return
			}
		}
	}()
	cfg, err := pgconn.ParseConfig("")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgconn.Construct(&pgconn.HijackedConn{Conn: client, ParameterStatuses: map[string]string{}, TxStatus: 'I', Frontend: pgproto3.NewFrontend(client, client), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return conn
}

func resultSet(cols []string, rows ...[]string) []pgproto3.BackendMessage {
	rd := &pgproto3.RowDescription{}
	for _, c := range cols {
		rd.Fields = append(rd.Fields, pgproto3.FieldDescription{Name: []byte(c), DataTypeOID: 25, Format: 0, DataTypeSize: -1, TypeModifier: -1})
	}
	msgs := []pgproto3.BackendMessage{rd}
	for _, r := range rows {
		dr := &pgproto3.DataRow{}
		for _, v := range r {
			if v == "NULL" {
				dr.Values = append(dr.Values, nil)
			} else {
				dr.Values = append(dr.Values, []byte(v))
			}
		}
		msgs = append(msgs, dr)
	}
	return append(msgs, &pgproto3.CommandComplete{CommandTag: []byte("SELECT")})
}

// rawTar is a tar stream without the end-of-archive blocks, as
// PostgreSQL 13/14 send it.
func rawTar(t *testing.T, members ...[2]string) []byte {
	full := makeTar(t, members...)
	return full[:len(full)-1024]
}

func plainRepo(t *testing.T) *repo.Repository {
	t.Helper()
	return repotest.New(t, repotest.Plain(), repotest.WithConfig(func(c *repo.Config) {
		c.SystemIdentifier, c.PGMajor, c.WALSegmentSize = "1", 14, 16<<20
	})).Repository
}

// runScript drives start, stream and finish as Run does, against script.
func runScript(t *testing.T, r *repo.Repository, major int, script []pgproto3.BackendMessage) (*uploader, position, error) {
	t.Helper()
	ctx := context.Background()
	conn := scriptedConn(t, script)
	_, tss, err := start(ctx, conn, command(major, "x", false, 0, false))
	if err != nil {
		return nil, position{}, err
	}
	up := newUploader(ctx, r, "20261123T225700Z", 700, 2, tss, nil, major < 15)
	if major >= 15 {
		err = streamV15(up.context(), conn, up)
	} else {
		err = streamLegacy(up.context(), conn, tss, up)
	}
	var stop position
	if err == nil {
		stop, err = finish(up.context(), conn)
	}
	if err != nil {
		up.fail(err)
	}
	if uerr := up.close(); uerr != nil {
		return up, stop, uerr
	}
	return up, stop, err
}

var (
	labelTar = [2]string{"backup_label", pg15Label}
	ts1Tar   = [2]string{"PG_14_202107181/16384/16390", strings.Repeat("t", 3000)}
	manifest = `{"PostgreSQL-Backup-Manifest-Version": 1}`
)

func head(major int) []pgproto3.BackendMessage {
	msgs := resultSet([]string{"recptr", "tli"}, []string{"0/2000028", "1"})
	return append(msgs, resultSet([]string{"spcoid", "spclocation", "size"},
		[]string{"16385", "/srv/ts1", "3"}, []string{"NULL", "NULL", "60"})...)
}

func tail() []pgproto3.BackendMessage {
	msgs := resultSet([]string{"recptr", "tli"}, []string{"0/2000100", "1"})
	return append(msgs, &pgproto3.CommandComplete{CommandTag: []byte("BASE_BACKUP")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
}

func copyData(b []byte, size int) []pgproto3.BackendMessage {
	var msgs []pgproto3.BackendMessage
	for len(b) > 0 {
		n := min(size, len(b))
		msgs = append(msgs, &pgproto3.CopyData{Data: b[:n]})
		b = b[n:]
	}
	return msgs
}

func v15Data(b []byte) []pgproto3.BackendMessage {
	var msgs []pgproto3.BackendMessage
	for _, m := range copyData(b, 333) {
		msgs = append(msgs, &pgproto3.CopyData{Data: append([]byte{'d'}, m.(*pgproto3.CopyData).Data...)})
	}
	return msgs
}

func TestLegacyProtocol(t *testing.T) {
	r := plainRepo(t)
	script := head(14)
	for _, archive := range [][]byte{rawTar(t, ts1Tar), rawTar(t, labelTar, [2]string{"PG_VERSION", "14\n"}), []byte(manifest)} {
		script = append(script, &pgproto3.CopyOutResponse{})
		script = append(script, copyData(archive, 500)...)
		script = append(script, &pgproto3.CopyDone{})
	}
	script = append(script, tail()...)
	up, stop, err := runScript(t, r, 14, script)
	if err != nil {
		t.Fatal(err)
	}
	if stop.LSN != 0x2000100 || stop.Timeline != 1 || string(up.label.text) != pg15Label {
		t.Fatalf("stop %+v, label %q", stop, up.label.text)
	}
	archives, err := up.result()
	if err != nil {
		t.Fatal(err)
	}
	want := []repo.Archive{{Name: "16385.tar", TablespaceOID: 16385, TablespacePath: "/srv/ts1"}, {Name: "base.tar"}, {Name: repo.ServerManifestArchive}}
	if len(archives) != len(want) {
		t.Fatalf("archives %+v", archives)
	}
	for i, a := range archives {
		if a.Name != want[i].Name || a.TablespaceOID != want[i].TablespaceOID || a.TablespacePath != want[i].TablespacePath || len(a.Chunks) == 0 {
			t.Errorf("archive %d: %+v, want %+v", i, a, want[i])
		}
		data := reassemble(t, r, a)
		if a.Name == repo.ServerManifestArchive {
			if string(data) != manifest {
				t.Errorf("manifest %q", data)
			}
			continue
		}
		tarNames(t, data) // complete tar files: walvault added the trailer
	}
}

func TestV15Protocol(t *testing.T) {
	archive := func(name, path string, data []byte) []pgproto3.BackendMessage {
		msgs := []pgproto3.BackendMessage{&pgproto3.CopyData{Data: []byte("n" + name + "\x00" + path + "\x00")}}
		msgs = append(msgs, v15Data(data)...)
		return append(msgs, &pgproto3.CopyData{Data: []byte("p\x00\x00\x00\x00\x00\x00\x10\x00")})
	}
	full := func() []pgproto3.BackendMessage {
		s := append(head(15), &pgproto3.CopyOutResponse{})
		s = append(s, archive("16385.tar", "/srv/ts1", makeTar(t, ts1Tar))...)
		s = append(s, archive("base.tar", "", makeTar(t, labelTar))...)
		s = append(s, &pgproto3.CopyData{Data: []byte("m")})
		s = append(s, v15Data([]byte(manifest))...)
		s = append(s, &pgproto3.CopyDone{})
		return append(s, tail()...)
	}

	t.Run("ok", func(t *testing.T) {
		r := plainRepo(t)
		up, _, err := runScript(t, r, 15, full())
		if err != nil {
			t.Fatal(err)
		}
		archives, err := up.result()
		if err != nil || len(archives) != 3 || archives[0].TablespaceOID != 16385 {
			t.Fatalf("%+v, %v", archives, err)
		}
		for _, a := range archives[:2] {
			if !bytes.HasSuffix(reassemble(t, r, a), make([]byte, 1024)) {
				t.Errorf("%s: trailer missing", a.Name)
			}
			tarNames(t, reassemble(t, r, a)) // and not doubled: tarNames checks the tail
		}
	})

	bad := []struct {
		name   string
		script func() []pgproto3.BackendMessage
		want   string
	}{
		{"server error mid-stream", func() []pgproto3.BackendMessage {
			s := full()[:len(head(15))+5]
			return append(s, &pgproto3.ErrorResponse{Severity: "ERROR", Code: "58P01", Message: "could not open file"})
		}, "could not open file"},
		{"data before archive", func() []pgproto3.BackendMessage {
			return append(head(15), &pgproto3.CopyOutResponse{}, &pgproto3.CopyData{Data: []byte("dxx")})
		}, "data before the first archive"},
		{"no manifest", func() []pgproto3.BackendMessage {
			s := append(head(15), &pgproto3.CopyOutResponse{})
			s = append(s, archive("base.tar", "", makeTar(t, labelTar))...)
			return append(s, &pgproto3.CopyDone{})
		}, "without a backup manifest"},
		{"archive twice", func() []pgproto3.BackendMessage {
			s := append(head(15), &pgproto3.CopyOutResponse{})
			s = append(s, archive("base.tar", "", makeTar(t, labelTar))...)
			return append(s, archive("base.tar", "", makeTar(t, labelTar))...)
		}, "twice"},
		{"base.tar without backup_label", func() []pgproto3.BackendMessage {
			s := append(head(15), &pgproto3.CopyOutResponse{})
			s = append(s, archive("base.tar", "", makeTar(t, [2]string{"PG_VERSION", "15\n"}))...)
			return append(s, &pgproto3.CopyData{Data: []byte("m")})
		}, "not backup_label"},
		{"bad framing", func() []pgproto3.BackendMessage {
			return append(head(15), &pgproto3.CopyOutResponse{}, &pgproto3.CopyData{Data: []byte("n../x\x00\x00")})
		}, "unusable archive name"},
		{"error at start", func() []pgproto3.BackendMessage {
			return []pgproto3.BackendMessage{&pgproto3.ErrorResponse{Severity: "ERROR", Code: "42501", Message: "permission denied to start backup"}}
		}, "permission denied"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runScript(t, plainRepo(t), 15, tt.script())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			var pgErr *pgconn.PgError
			if strings.Contains(tt.name, "server error") && !errors.As(err, &pgErr) {
				t.Errorf("server error not a *pgconn.PgError: %v", err)
			}
		})
	}
}
