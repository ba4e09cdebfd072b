package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// ErrNoBinary reports that no minio executable was found.
var ErrNoBinary = errors.New("minio binary not found")

// Server is a running MinIO server. Its fields are read-only.
type Server struct {
	Endpoint  string // "http://127.0.0.1:PORT"; use path-style addressing
	AccessKey string // root user
	SecretKey string // root password
	Region    string // "us-east-1"
	LogFile   string // server output

	cmd      *exec.Cmd
	log      *os.File
	exited   chan struct{}
	stopOnce sync.Once
}

// FindBinary returns the path of the minio executable: $WALVAULT_MINIO_BIN
// (which must then exist), else "minio" on $PATH, else
// $HOME/.cache/walvault/bin/minio. The error wraps ErrNoBinary when there is
// none.
func FindBinary() (string, error) {
	if p := os.Getenv("WALVAULT_MINIO_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("WALVAULT_MINIO_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "walvault", "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: set WALVAULT_MINIO_BIN, put minio on PATH, or build it into "+
		"$HOME/.cache/walvault/bin (GOBIN=$HOME/.cache/walvault/bin go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c)", ErrNoBinary)
}

// Start starts a server for the test and stops it when the test ends. Without
// a minio binary the test is skipped, unless $CI is non-empty: then it fails,
// so that end-to-end tests cannot silently stop running in CI.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := FindBinary(); err != nil {
		if errors.Is(err, ErrNoBinary) && os.Getenv("CI") == "" {
			t.Skipf("skipping test that needs a MinIO server: %v", err)
		}
		t.Fatalf("miniotest: %v", err)
	}
	s, err := StartServer(t.TempDir())
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("miniotest: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("MinIO log %s (last lines):\n%s", s.LogFile, s.LogTail(40))
		}
	})
	return s
}

// StartServer starts a server keeping its data, certificates directory and
// log in dir, and waits until it is healthy. The caller must call Stop.
func StartServer(dir string) (*Server, error) {
	bin, err := FindBinary()
	if err != nil {
		return nil, err
	}
	// Free ports are picked then released, so another process can take one
	// before MinIO binds it; try again with new ports when that happens.
	for try := 1; ; try++ {
		s, err := start(bin, dir)
		if err == nil || try == 3 {
			return s, err
		}
	}
}

func start(bin, dir string) (*Server, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	certs := filepath.Join(dir, "certs") // keeps ~/.minio/certs from turning TLS on
	for _, d := range []string{data, certs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	logFile := filepath.Join(dir, "minio.log")
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://" + ports[0],
		AccessKey: "walvault" + randomHex(6),
		SecretKey: randomHex(20),
		Region:    "us-east-1",
		LogFile:   logFile,
		log:       log,
		exited:    make(chan struct{}),
	}
	cmd := exec.Command(bin, "server", data, "--address", ports[0], "--console-address", ports[1], "--certs-dir", certs)
	cmd.Env = append(environWithout("MINIO_"),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_REGION="+s.Region,
	)
	cmd.Stdout, cmd.Stderr = log, log
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitHealthy(60 * time.Second); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("minio at %s: %w\nlog %s:\n%s", s.Endpoint, err, logFile, s.LogTail(20))
	}
	return s, nil
}

func (s *Server) waitHealthy(timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(s.Endpoint + "/minio/health/live")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return errors.New("server exited during startup")
		case <-deadline.C:
			return fmt.Errorf("not healthy after %v", timeout)
		case <-tick.C:
		}
	}
}

// Stop kills the server's process group and waits for it to exit. It may be
// called more than once.
func (s *Server) Stop() error {
	var err error
	s.stopOnce.Do(func() {
		killGroup(s.cmd)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			err = fmt.Errorf("minio (pid %d) did not exit after SIGKILL", s.cmd.Process.Pid)
		}
		_ = s.log.Close()
	})
	return err
}

// LogTail returns the last n lines of the server log.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.LogFile)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// Client returns a minio-go client for the server: an S3 client that shares
// no code with the one under test, for inspecting what it wrote.
func (s *Server) Client() (*minio.Client, error) {
	return minio.New(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: false,
		Region: s.Region,
	})
}

// CreateBucket creates a bucket or fails the test.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	s.createBucket(t, name, false)
}

// CreateLockedBucket creates a bucket with S3 Object Lock enabled (and so
// versioning), or fails the test.
func (s *Server) CreateLockedBucket(t testing.TB, name string) {
	t.Helper()
	s.createBucket(t, name, true)
}

func (s *Server) createBucket(t testing.TB, name string, locking bool) {
	t.Helper()
	c, err := s.Client()
	if err != nil {
		t.Fatalf("miniotest: client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region, ObjectLocking: locking}); err != nil {
		t.Fatalf("miniotest: create bucket %s: %v", name, err)
	}
}

func freePorts(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// environWithout returns the environment minus variables starting with
// prefix, so a developer's MINIO_* settings cannot change the server.
func environWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}
