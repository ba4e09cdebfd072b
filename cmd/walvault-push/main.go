// Command walvault-push is a small archive_command for a running
// `walvault wal-server`:
//
//	archive_command = 'walvault-push --config /etc/walvault/main.conf --wal-server /run/walvault/main/wal.sock %p'
//
// It takes the command line of `walvault wal-push`, hands the file to the
// server and ends with the exit status the server reports. It imports only
// the standard library and the protocol's client, so it starts in a few
// milliseconds where walvault, a large program, takes tens: on every WAL
// segment. Whenever the server does not answer (not running, killed
// mid-push, archiving to another repository) or the command line is not one
// it understands, it runs `walvault wal-push` with the same arguments, which
// archives the file itself: the outcome is always that of wal-push.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/walvault/walvault/archive/walpush/walclient"
)

func main() {
	args := os.Args[1:]
	socket, repoURL, path, ok := parse(args, os.Getenv)
	if ok {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		_, err := walclient.Ask(ctx, socket, repoURL, path)
		stop()
		var re *walclient.RemoteError
		switch {
		case err == nil:
			os.Exit(0)
		case errors.As(err, &re):
			fmt.Fprintf(os.Stderr, "walvault: %s\n", re.Msg)
			os.Exit(re.Code)
		case errors.Is(err, context.Canceled):
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "walvault-push: %v; running walvault wal-push\n", err)
	}
	os.Exit(fallback(args))
}

// fallback runs walvault wal-push with args: the walvault beside this
// program, else the one on PATH.
func fallback(args []string) int {
	exe := "walvault"
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), "walvault"); isExecutable(p) {
			exe = p
		}
	}
	cmd := exec.Command(exe, append([]string{"wal-push"}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "walvault-push: cannot run %s wal-push: %v\n", exe, err)
	// Not 255: PostgreSQL retries a failed archive_command.
	return 1
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// parse finds what the server needs in a wal-push command line: the
// socket, the repository URL (flag, else WALVAULT_REPO, else the config
// file's repo line, as walvault resolves it) and the file. ok is false
// when there is no socket or the line is not plainly "[flags] PATH": then
// walvault wal-push decides.
func parse(args []string, getenv func(string) string) (socket, repoURL, path string, ok bool) {
	var config string
	config, repoURL, socket = getenv("WALVAULT_CONFIG"), getenv("WALVAULT_REPO"), getenv("WALVAULT_WAL_SERVER")
	var repoFlag, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") {
			rest = append(rest, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "wal-server", "repo", "config":
			if !hasVal {
				if i+1 >= len(args) {
					return "", "", "", false
				}
				i++
				val = args[i]
			}
			switch name {
			case "wal-server":
				socket = val
			case "repo":
				repoFlag = append(repoFlag, val)
			case "config":
				config = val
			}
		case "push-ahead", "log-format", "log-level", "s3-endpoint", "s3-region", "age-recipients",
			"age-recipients-file", "age-identity-file", "compress-level", "s3-object-lock-days", "s3-object-lock-mode":
			// Settings of the server's own; a value may follow.
			if !hasVal {
				i++
			}
		default:
			// Anything else (a boolean, a flag of a newer walvault):
			// let walvault read the line.
			return "", "", "", false
		}
	}
	if len(rest) != 1 || socket == "" {
		return "", "", "", false
	}
	path = rest[0]
	switch {
	case len(repoFlag) > 0:
		repoURL = repoFlag[len(repoFlag)-1]
	case repoURL == "" && config != "":
		repoURL = configValue(config, "repo")
	}
	return socket, repoURL, path, true
}

// configValue reads name from a walvault config file ("name = value"
// lines, # comments). A value it reads differently from walvault only
// makes the server turn the request away, and wal-push then runs itself.
func configValue(file, name string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	value := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == name {
			value = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return value
}
