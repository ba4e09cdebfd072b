package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/walvault/walvault/internal/connstr"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// env is the environment variable for a flag: WALVAULT_<NAME>.
func env(name string) []string {
	return []string{"WALVAULT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
}

// secretFlags may come from the environment or the config file only: on a
// command line they would show in every process listing.
var secretFlags = []string{"s3-access-key", "s3-secret-key", "s3-session-token"}

func repoFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "repo", EnvVars: env("repo"), Usage: "repository URL: file:///abs/path or s3://bucket/prefix"},
		&cli.StringFlag{Name: "s3-endpoint", EnvVars: env("s3-endpoint"), Usage: "S3 endpoint URL for S3-compatible servers (MinIO, Ceph, Wasabi, B2, …)"},
		&cli.StringFlag{Name: "s3-region", EnvVars: env("s3-region"), Usage: "S3 region (default: from the AWS configuration, else us-east-1)"},
		&cli.BoolFlag{Name: "s3-path-style", EnvVars: env("s3-path-style"), Usage: "use path-style S3 addressing (MinIO, Ceph)"},
		&cli.IntFlag{Name: "s3-object-lock-days", EnvVars: env("s3-object-lock-days"), Usage: "write every object with an S3 Object Lock retention of this many days (bucket created with Object Lock; 0: off)"},
		&cli.StringFlag{Name: "s3-object-lock-mode", EnvVars: env("s3-object-lock-mode"), Value: "governance", Usage: "object lock mode: governance or compliance"},
		&cli.StringFlag{Name: "s3-access-key", EnvVars: env("s3-access-key"), Hidden: true},
		&cli.StringFlag{Name: "s3-secret-key", EnvVars: env("s3-secret-key"), Hidden: true},
		&cli.StringFlag{Name: "s3-session-token", EnvVars: env("s3-session-token"), Hidden: true},
		&cli.StringFlag{Name: "age-recipients", EnvVars: env("age-recipients"), Usage: "age recipients (public keys) to encrypt to, comma-separated: age1…, ssh-ed25519 …, ssh-rsa …"},
		&cli.StringFlag{Name: "age-recipients-file", EnvVars: env("age-recipients-file"), Usage: "file of age recipients, one per line"},
		&cli.StringFlag{Name: "age-identity-file", EnvVars: env("age-identity-file"), Usage: "age identity file (private key) for reading the repository; its walvault root key is the root whose writers a reader trusts"},
		&cli.StringFlag{Name: "writer-key-file", EnvVars: env("writer-key-file"), Usage: "writer key (walvault writer issue): signs what this host writes to a format-2 repository"},
		&cli.BoolFlag{Name: "allow-unsigned-repository", EnvVars: env("allow-unsigned-repository"), Usage: "read a format-1 (unsigned) repository although the identity holds a root key (only for a repository walvault made before format 2)"},
		&cli.IntFlag{Name: "compress-level", EnvVars: env("compress-level"), Value: 1, Usage: "zstd level 1 (fastest) to 4 (best)"},
	}
}

func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", EnvVars: env("config"), Usage: "config file of `name = value` lines (names as the flags)"},
		&cli.StringFlag{Name: "log-format", EnvVars: env("log-format"), Value: "text", Usage: "text or json"},
		&cli.StringFlag{Name: "log-level", EnvVars: env("log-level"), Value: "info", Usage: "debug, info, warn or error"},
	}
}

func pgFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "pg-url", EnvVars: env("pg-url"), Usage: "PostgreSQL connection (libpq URL or key=value); default: libpq environment (PGHOST, PGPORT, PGUSER, …, ~/.pgpass). On the command line without a password (refused: argv shows in process listings); one with a password goes in WALVAULT_PG_URL or the config file"},
	}
}

// refuseSecretArgs refuses secrets on the command line, before anything
// runs: every local user can read argv in the process listing. It looks at
// the arguments themselves, not at the parsed flags: urfave/cli reports a
// flag filled from its environment variable as set too, and the same
// secret from the environment or the config file is fine.
func refuseSecretArgs(args []string) error {
	for i, a := range args {
		name, value, hasValue := flagArg(a)
		if slices.Contains(secretFlags, name) {
			return usagef("--%s is not accepted on the command line (it would show in process listings); set %s or put it in the config file", name, env(name)[0])
		}
		if name != "pg-url" {
			continue
		}
		if !hasValue {
			if i+1 == len(args) {
				continue // no value: urfave/cli says so
			}
			value = args[i+1]
		}
		if connstr.HasPassword(value) {
			return usagef("--pg-url must not hold the password (it would show in process listings): "+
				"set the connection in %s or as pg-url in the config file, or leave the password out and use PGPASSWORD or ~/.pgpass", env("pg-url")[0])
		}
	}
	return nil
}

// flagArg splits a command-line argument that is a flag (-name, --name,
// -name=value, --name=value) as the flag package reads it.
func flagArg(a string) (name, value string, hasValue bool) {
	switch {
	case strings.HasPrefix(a, "--"):
		a = a[2:]
	case strings.HasPrefix(a, "-"):
		a = a[1:]
	default:
		return "", "", false
	}
	return strings.Cut(a, "=")
}

func flags(groups ...[]cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "walvault",
		Usage:                "PostgreSQL WAL archiving, encrypted backups and point-in-time recovery",
		Version:              version,
		Writer:               stdout,
		ErrWriter:            stderr,
		HideHelpCommand:      true,
		EnableBashCompletion: false,
		ExitErrHandler:       func(*cli.Context, error) {},
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(stderr, "walvault: unknown command %q; run 'walvault --help' for the list\n", name)
		},
		Commands: []*cli.Command{
			keygenCommand(),
			writerCommand(),
			initCommand(),
			walPushCommand(),
			walServerCommand(),
			walFetchCommand(),
			walPrefetchCommand(),
			backupCommand(),
			streamCommand(),
			infoCommand(),
			restoreCommand(),
			recoveryCleanupCommand(),
			drillCommand(),
			verifyCommand(),
			expireCommand(),
			keepCommand(),
			noteCommand(),
			auditCommand(),
			rekeyCommand(),
			checkCommand(),
			odooCommand(),
			filestoreCommand(),
		},
	}
	var setup func(cmds []*cli.Command)
	setup = func(cmds []*cli.Command) {
		for _, c := range cmds {
			c.Before = func(c *cli.Context) error {
				if err := loadConfigFile(c); err != nil {
					return err
				}
				storeSettings(c)
				return nil
			}
			c.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usagef("%v", err) }
			setup(c.Subcommands) // walvault filestore push, …
		}
	}
	setup(app.Commands)
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usagef("%v", err) }
	return app
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if err := refuseSecretArgs(args[1:]); err != nil {
		fmt.Fprintf(stderr, "walvault: %v\n", err)
		return exitCode(err)
	}
	app := newApp(stdout, stderr)
	var unknown bool
	app.CommandNotFound = func(c *cli.Context, name string) {
		unknown = true
		fmt.Fprintf(stderr, "walvault: unknown command %q; run 'walvault --help' for the list\n", name)
	}
	err := app.RunContext(ctx, args)
	if unknown {
		return exitUsage
	}
	if err == nil {
		return exitOK
	}
	var fe *fetchError
	if errors.As(err, &fe) {
		// wal-fetch speaks to PostgreSQL: 1 means "not there", anything
		// else must abort recovery rather than end it early.
		fmt.Fprintf(stderr, "walvault wal-fetch: %v\n", fe.err)
		if fe.notFound {
			return exitFailure
		}
		return exitFetchAbort
	}
	if len(args) > 1 && args[1] == "wal-fetch" {
		// Anything that stops wal-fetch before its action (a bad flag in
		// restore_command, a --config file the server's user cannot read)
		// must abort recovery too: exit 2 or 3 would read as "not found"
		// and let PostgreSQL promote early.
		fmt.Fprintf(stderr, "walvault wal-fetch: %v\n", err)
		return exitFetchAbort
	}
	if strings.Contains(err.Error(), "flag provided but not defined") || strings.Contains(err.Error(), "invalid value") {
		err = usagef("%v", err)
	}
	fmt.Fprintf(stderr, "walvault: %v\n", err)
	return exitCode(err)
}

// fetchError carries wal-fetch's outcome to run, which owns exit statuses.
type fetchError struct {
	err      error
	notFound bool
}

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// newLogger builds the slog logger: text on terminals and by default, JSON
// when asked (services feeding a log pipeline).
func newLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(settingsOf(c).LogLevel)); err != nil {
		return nil, usagef("--log-level %q: use debug, info, warn or error", settingsOf(c).LogLevel)
	}
	w := c.App.ErrWriter
	opts := &slog.HandlerOptions{Level: level}
	switch settingsOf(c).LogFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: use text or json", settingsOf(c).LogFormat)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
