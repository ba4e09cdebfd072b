package odooconf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DefaultPath is where the Debian/Ubuntu package installs odoo.conf.
const DefaultPath = "/etc/odoo/odoo.conf"

// ErrNoDataDir is returned by FilestoreDir when odoo.conf sets no data_dir
// and the default one cannot be found (no odoo user on this host).
var ErrNoDataDir = errors.New("odoo.conf sets no data_dir and there is no odoo user whose home gives the default")

// Config is what walvault uses of odoo.conf. Empty strings and a zero port
// mean "not set": libpq's defaults (and environment) apply.
type Config struct {
	Path       string // the file it was read from; "" for Parse
	DBHost     string
	DBPort     int
	DBUser     string
	DBPassword string
	DBName     string // may list several databases, comma-separated (Odoo 17+)
	DBSSLMode  string
	DataDir    string
	// Options holds every [options] setting as written (unset ones
	// excluded), lower-cased keys.
	Options map[string]string
}

// Load reads and parses the file at path.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("odoo config %s: %w", path, err)
	}
	cfg, err := Parse(bytes.NewReader(b))
	if err != nil {
		return Config{}, fmt.Errorf("odoo config %s: %w", path, err)
	}
	cfg.Path = path
	return cfg, nil
}

// unset reports whether Odoo reads the value as "no value".
func unset(v string) bool {
	switch strings.ToLower(v) {
	case "", "false", "none":
		return true
	}
	return false
}

// Parse reads an odoo.conf. Only the [options] section is interpreted;
// other sections are skipped.
func Parse(r io.Reader) (Config, error) {
	cfg := Config{Options: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	section := ""
	lastKey := "" // the option a continuation line extends
	line := 0
	for sc.Scan() {
		line++
		raw := strings.TrimRight(sc.Text(), " \t\r")
		if line == 1 {
			raw = strings.TrimPrefix(raw, "\ufeff")
		}
		trimmed := strings.TrimSpace(raw)
		if trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';' {
			lastKey = ""
			continue
		}
		if raw[0] == ' ' || raw[0] == '\t' {
			if lastKey == "" {
				return Config{}, fmt.Errorf("line %d: indented line continues no setting", line)
			}
			if section == "options" {
				cfg.Options[lastKey] += "\n" + trimmed
			}
			continue
		}
		if trimmed[0] == '[' {
			if !strings.HasSuffix(trimmed, "]") {
				return Config{}, fmt.Errorf("line %d: section header %q has no closing ]", line, trimmed)
			}
			section = strings.TrimSpace(trimmed[1 : len(trimmed)-1])
			lastKey = ""
			continue
		}
		i := strings.IndexAny(trimmed, "=:")
		if i <= 0 {
			return Config{}, fmt.Errorf("line %d: want name = value", line)
		}
		if section == "" {
			return Config{}, fmt.Errorf("line %d: setting before any [section] (odoo.conf starts with [options])", line)
		}
		key := strings.ToLower(strings.TrimSpace(trimmed[:i]))
		lastKey = key
		if section == "options" {
			cfg.Options[key] = strings.TrimSpace(trimmed[i+1:])
		}
	}
	if err := sc.Err(); err != nil {
		return Config{}, fmt.Errorf("line %d: %w", line+1, err)
	}
	for k, v := range cfg.Options {
		if unset(v) {
			delete(cfg.Options, k)
		}
	}
	o := cfg.Options
	cfg.DBHost, cfg.DBUser, cfg.DBPassword = o["db_host"], o["db_user"], o["db_password"]
	cfg.DBName, cfg.DBSSLMode, cfg.DataDir = o["db_name"], o["db_sslmode"], o["data_dir"]
	if p := o["db_port"]; p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return Config{}, fmt.Errorf("db_port %q is not a TCP port", p)
		}
		cfg.DBPort = n
	}
	return cfg, nil
}

// Database returns the database to use: db when given, else the only one
// odoo.conf names. It is "" when neither says.
func (c Config) Database(db string) string {
	if db != "" {
		return db
	}
	if c.DBName != "" && !strings.Contains(c.DBName, ",") {
		return strings.TrimSpace(c.DBName)
	}
	return ""
}

// ConnString is a libpq key=value connection string for database db (""
// leaves it to libpq) with odoo.conf's host, port, user and sslmode. It
// never contains the password: set that with ConnConfig.
func (c Config) ConnString(db string) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+quote(v))
		}
	}
	add("host", c.DBHost)
	if c.DBPort != 0 {
		add("port", strconv.Itoa(c.DBPort))
	}
	add("user", c.DBUser)
	add("dbname", c.Database(db))
	add("sslmode", c.DBSSLMode)
	return strings.Join(parts, " ")
}

// quote quotes a value for a libpq key=value string.
func quote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// ConnConfig parses ConnString(db) (libpq environment variables fill what
// odoo.conf leaves unset, as for Odoo itself) and sets the password from
// odoo.conf, if it has one.
func (c Config) ConnConfig(db string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(c.ConnString(db))
	if err != nil {
		return nil, fmt.Errorf("connection from odoo config: %w", err)
	}
	if c.DBPassword != "" {
		cfg.Password = c.DBPassword
	}
	return cfg, nil
}

// DefaultDataDir is Odoo's data directory when odoo.conf sets none:
// ~/.local/share/Odoo of the odoo user (the Debian package's user, whose
// home is /var/lib/odoo). The official container sets data_dir explicitly.
func DefaultDataDir() (string, error) {
	u, err := user.Lookup("odoo")
	if err != nil || u.HomeDir == "" {
		return "", ErrNoDataDir
	}
	return filepath.Join(u.HomeDir, ".local", "share", "Odoo"), nil
}

// DataDirOrDefault is data_dir, or DefaultDataDir when unset.
func (c Config) DataDirOrDefault() (string, error) {
	if c.DataDir != "" {
		return expandHome(c.DataDir), nil
	}
	return DefaultDataDir()
}

// FilestoreDir is where Odoo keeps database db's attachments:
// <data_dir>/filestore/<db>.
func (c Config) FilestoreDir(db string) (string, error) {
	if db == "" || strings.ContainsAny(db, "/\x00") || db == "." || db == ".." {
		return "", fmt.Errorf("filestore of database %q: not a database name", db)
	}
	d, err := c.DataDirOrDefault()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "filestore", db), nil
}

// expandHome expands a leading ~ or ~user, as Odoo does for data_dir.
func expandHome(p string) string {
	if !strings.HasPrefix(p, "~") {
		return p
	}
	name, rest, _ := strings.Cut(p[1:], "/")
	var home string
	if name == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return p
		}
		home = h
	} else {
		u, err := user.Lookup(name)
		if err != nil {
			return p
		}
		home = u.HomeDir
	}
	return filepath.Join(home, rest)
}
