package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/crypto"
	"github.com/walvault/walvault/restore/recoverydir"
	"github.com/walvault/walvault/restore/scratch"
)

// recoveryRequest says for which server restore_command is set up.
type recoveryRequest struct {
	pgdata  string
	dir     string // the recovery directory, outside pgdata
	account *scratch.Account
	// scratch: walvault starts the server itself (drill, restore
	// --database, restore with post-recovery steps). This run's S3
	// credentials reach its restore_command through the server's
	// environment, and it is not probed: the steps fail loudly anyway.
	scratch bool
}

// recoverySetup is what setupRecovery made.
type recoverySetup struct {
	rec *recoverydir.Recovery
	// env is added to a scratch server's environment.
	env         []string
	keyCopied   bool
	credsCopied bool
	included    string
}

// setupRecovery writes the recovery directory restore_command reads (the
// settings of this run, and a copy of the identity when the server's user
// cannot read the original) and, for a server the operator starts later,
// checks by trying that the server's user, with the environment a service
// manager gives it, can read the repository with those settings. S3
// credentials are copied only when the operator asks (--copy-s3-credentials);
// otherwise restore_command relies on the config file it includes (the
// operator's own, when the server's user can read it) or the user's own
// credentials (~/.aws, an instance role).
func setupRecovery(ctx context.Context, c *cli.Context, req recoveryRequest) (*recoverySetup, error) {
	exe, err := selfPath()
	if err != nil {
		return nil, err
	}
	acct := req.account
	set := recoverydir.Settings{
		Repo:        settingsOf(c).Repo,
		S3Endpoint:  settingsOf(c).S3Endpoint,
		S3Region:    settingsOf(c).S3Region,
		S3PathStyle: settingsOf(c).S3PathStyle,
		LogFormat:   settingsOf(c).LogFormat,
	}
	out := &recoverySetup{}
	opts := recoverydir.Options{Dir: req.dir, PGData: req.pgdata, Exe: exe}
	if acct.Other() {
		opts.Chown = true
		opts.UID, opts.GID = acct.IDs()
	}
	if id := settingsOf(c).AgeIdentityFile; id != "" {
		abs, err := filepath.Abs(id)
		if err != nil {
			return nil, configf("--age-identity-file: %v", err)
		}
		if acct.CanRead(abs) == nil {
			set.IdentityFile = abs
		} else {
			// Root's own key (/root is 0700), the usual case in an
			// incident: restore_command gets a copy only the server's
			// user can read, removed when recovery ends.
			key, err := os.ReadFile(abs)
			if err != nil {
				return nil, configf("--age-identity-file: %v", err)
			}
			// restore_command reads and checks; it never certifies a
			// writer: the copy trusts the root without holding its key.
			if key, err = crypto.WithoutRootSecrets(key); err != nil {
				return nil, configf("--age-identity-file %s: %v", abs, err)
			}
			opts.IdentityKey = key
			out.keyCopied = true
		}
	}
	if cfg := settingsOf(c).Config; cfg != "" {
		abs, err := filepath.Abs(cfg)
		if err == nil && acct.CanRead(abs) == nil {
			set.Include, out.included = abs, abs
		}
	}
	ak, sk, tok := s3Credentials(c)
	switch {
	case !strings.HasPrefix(set.Repo, "s3://"):
	case req.scratch:
		out.env = scratchServerEnv(c)
	case settingsOf(c).CopyS3Credentials:
		if ak == "" && sk == "" {
			return nil, usagef("--copy-s3-credentials: this run has no S3 credentials of its own to copy (s3-access-key/s3-secret-key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
		}
		set.S3AccessKey, set.S3SecretKey, set.S3SessionToken = ak, sk, tok
		out.credsCopied = true
	}
	opts.Settings = set
	rec, err := recoverydir.Write(opts)
	if err != nil {
		return nil, configf("%v", err)
	}
	out.rec = rec
	if req.scratch {
		return out, nil
	}
	if err := probeRecovery(ctx, acct, exe, rec); err != nil {
		_, _ = recoverydir.Clean(rec.Dir, "")
		hint := ""
		if strings.HasPrefix(set.Repo, "s3://") && !out.credsCopied {
			hint = fmt.Sprintf("; if it lacks S3 credentials: give them to %s (a config file it can read, passed with --config; ~%s/.aws/credentials; an instance role), or pass --copy-s3-credentials to write this run's into %s (readable only by %s, removed when recovery ends)",
				acct.Name, acct.Name, rec.Dir, acct.Name)
		}
		return nil, configf("restore_command would fail: run as %s without this shell's environment, as the server will run it, it cannot read the repository: %v%s", acct.Name, err, hint)
	}
	return out, nil
}

// scratchServerEnv is what a server walvault starts itself adds to its
// environment for its restore_command: this run's S3 credentials, which may
// come from a config file the server's user cannot read. They stay in the
// process's memory; nothing is written.
func scratchServerEnv(c *cli.Context) []string {
	if !strings.HasPrefix(settingsOf(c).Repo, "s3://") {
		return nil
	}
	ak, sk, tok := s3Credentials(c)
	if ak == "" && sk == "" {
		return nil
	}
	env := []string{"WALVAULT_S3_ACCESS_KEY=" + ak, "WALVAULT_S3_SECRET_KEY=" + sk}
	if tok != "" {
		env = append(env, "WALVAULT_S3_SESSION_TOKEN="+tok)
	}
	return env
}

// s3Credentials are this run's S3 credentials: the settings', else the
// AWS environment's.
func s3Credentials(c *cli.Context) (ak, sk, tok string) {
	ak, sk, tok = settingsOf(c).S3AccessKey, settingsOf(c).S3SecretKey, settingsOf(c).S3SessionToken
	if ak == "" && sk == "" {
		ak, sk, tok = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")
	}
	return ak, sk, tok
}

// probeRecovery runs restore_command's program as the server's account,
// with the environment a service manager gives it, and has it open the
// repository (settings, credentials, identity file) and list it, as
// wal-fetch would.
func probeRecovery(ctx context.Context, acct *scratch.Account, exe string, rec *recoverydir.Recovery) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := acct.Command(ctx, acct.ServiceEnv(), exe, "wal-fetch", "--check", "--config", rec.ConfPath).CombinedOutput()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:]
	}
	msg = strings.TrimPrefix(msg, "walvault wal-fetch: ")
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) {
		return fmt.Errorf("cannot run %s: %v", exe, err)
	}
	if msg == "" {
		msg = err.Error()
	}
	return errors.New(msg)
}

func recoveryCleanupCommand() *cli.Command {
	return &cli.Command{
		Name:  "recovery-cleanup",
		Usage: "remove what restore left for restore_command (settings, identity copy, prefetched WAL) once recovery is over or abandoned",
		Flags: flags(commonFlags(), []cli.Flag{
			&cli.StringFlag{Name: "pgdata", Usage: "the restored data directory"},
			&cli.StringFlag{Name: "recovery-dir", Usage: "the recovery directory restore made (default: PGDATA.walvault-recovery)"},
			&cli.BoolFlag{Name: "at-recovery-end", Hidden: true, Usage: "run by PostgreSQL as recovery_end_command"},
			&cli.BoolFlag{Name: "force", Usage: "even while a server recovers on PGDATA (its restore_command will then fail and recovery stop)"},
		}),
		Description: `restore sets recovery_end_command to run this when recovery ends, so normally
nothing is left. Run it by hand for a restore that was abandoned (never
started, or shut down before promotion).`,
		Action: func(c *cli.Context) error {
			pgdata, dir := settingsOf(c).PGData, settingsOf(c).RecoveryDir
			if pgdata == "" && dir == "" {
				return usagef("recovery-cleanup needs --pgdata DIR (and --recovery-dir DIR when restore was given one)")
			}
			if pgdata != "" {
				abs, err := filepath.Abs(pgdata)
				if err != nil {
					return usagef("--pgdata: %v", err)
				}
				pgdata = abs
				if dir == "" {
					dir = recoverydir.DefaultDir(pgdata)
				}
			}
			if dir, _ = filepath.Abs(dir); dir == "" {
				return usagef("--recovery-dir: cannot make it absolute")
			}
			if pgdata != "" && !settingsOf(c).AtRecoveryEnd && !settingsOf(c).Force {
				if err := checkNotRecovering(pgdata); err != nil {
					return err
				}
			}
			removed, err := recoverydir.Clean(dir, pgdata)
			w := c.App.Writer
			if settingsOf(c).AtRecoveryEnd {
				w = c.App.ErrWriter // the server's log
			}
			for _, p := range removed {
				fmt.Fprintf(w, "walvault recovery-cleanup: removed %s\n", p)
			}
			if err != nil {
				return fmt.Errorf("recovery-cleanup: %w", err)
			}
			if len(removed) == 0 && !settingsOf(c).AtRecoveryEnd {
				fmt.Fprintf(w, "nothing to remove: no %s and nothing of walvault's in %s\n", dir, orDash(pgdata))
			}
			return nil
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// errStillRecovering: recovery-cleanup was asked to remove what a running
// recovery still needs.
var errStillRecovering = errors.New("the server is still recovering")

// checkNotRecovering refuses while a server runs on pgdata with a signal
// file: its restore_command still needs the settings.
func checkNotRecovering(pgdata string) error {
	pid, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
	if err != nil || !processAlive(pid) {
		return nil
	}
	for _, sig := range []string{"recovery.signal", "standby.signal"} {
		if _, err := os.Stat(filepath.Join(pgdata, sig)); err == nil {
			return fmt.Errorf("%w: a server runs on %s and %s is there, so its restore_command still needs these files; they are removed by themselves when recovery ends (recovery_end_command). To stop the recovery, stop the server first, or pass --force",
				errStillRecovering, pgdata, sig)
		}
	}
	return nil
}

// processAlive reports whether the pid on the first line of a
// postmaster.pid names a live process.
func processAlive(pidFile []byte) bool {
	line, _, _ := strings.Cut(string(pidFile), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
