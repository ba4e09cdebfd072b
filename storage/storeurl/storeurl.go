package storeurl

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/local"
	"github.com/walvault/walvault/storage/retry"
	"github.com/walvault/walvault/storage/s3"
)

// S3Config holds the S3 settings that do not fit in a URL. All fields are
// optional; see s3.Options for their meaning.
type S3Config struct {
	Endpoint  string
	Region    string
	PathStyle bool
	// Static credentials; empty AccessKey means the AWS default chain.
	AccessKey, SecretKey, SessionToken string
	CABundle                           []byte
	HTTPClient                         *http.Client
	// ObjectLock retains every object written (S3 only; a file
	// repository refuses it).
	ObjectLock s3.ObjectLock
}

// LogValue keeps secrets out of logs when the config is logged.
func (c S3Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", c.Endpoint),
		slog.String("region", c.Region),
		slog.Bool("path_style", c.PathStyle),
		slog.Bool("static_credentials", c.AccessKey != ""),
		slog.String("object_lock_mode", c.ObjectLock.Mode),
		slog.Duration("object_lock_period", c.ObjectLock.Period),
	)
}

const forms = "file:///absolute/path, /absolute/path, s3://bucket or s3://bucket/prefix"

// Open returns the Store that rawURL names, wrapped in retry.Wrap with the
// default retry options.
func Open(ctx context.Context, rawURL string, cfg S3Config) (storage.Store, error) {
	return OpenWithRetry(ctx, rawURL, cfg, retry.Options{})
}

// OpenWithRetry is Open with explicit retry options, for instance to log
// retries.
func OpenWithRetry(ctx context.Context, rawURL string, cfg S3Config, ro retry.Options) (storage.Store, error) {
	s, err := open(ctx, rawURL, cfg)
	if err != nil {
		return nil, err
	}
	return retry.Wrap(s, ro), nil
}

func open(ctx context.Context, rawURL string, cfg S3Config) (storage.Store, error) {
	if cfg.ObjectLock.Period != 0 && !strings.HasPrefix(rawURL, "s3:") {
		return nil, fmt.Errorf("repository %q: object lock needs an S3 repository (s3://bucket/prefix on a bucket created with Object Lock enabled)", redact(rawURL))
	}
	if strings.HasPrefix(rawURL, "/") {
		return openLocal(rawURL, rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("repository %q: cannot parse as a URL; use %s", redact(rawURL), forms)
	}
	shown := redact(rawURL)
	if u.User != nil {
		return nil, fmt.Errorf("repository %q: credentials do not belong in the URL; pass them as configuration or environment", shown)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, fmt.Errorf("repository %q: query strings and fragments are not accepted; use %s", shown, forms)
	}
	switch u.Scheme {
	case "file":
		if u.Opaque != "" || (u.Host != "" && u.Host != "localhost") || !strings.HasPrefix(u.Path, "/") {
			return nil, fmt.Errorf("repository %q: a file URL needs an absolute path, file:///absolute/path", shown)
		}
		return openLocal(u.Path, shown)
	case "s3":
		if u.Opaque != "" || u.Host == "" {
			return nil, fmt.Errorf("repository %q: an S3 URL names a bucket, s3://bucket or s3://bucket/prefix", shown)
		}
		prefix := strings.Trim(u.Path, "/")
		if prefix != "" && !storage.ValidKey(prefix) {
			return nil, fmt.Errorf("repository %q: invalid prefix %q (no empty, \".\" or \"..\" segments)", shown, prefix)
		}
		s, err := s3.New(ctx, s3.Options{
			Bucket:       u.Host,
			Prefix:       prefix,
			Endpoint:     cfg.Endpoint,
			Region:       cfg.Region,
			PathStyle:    cfg.PathStyle,
			AccessKey:    cfg.AccessKey,
			SecretKey:    cfg.SecretKey,
			SessionToken: cfg.SessionToken,
			CABundle:     cfg.CABundle,
			HTTPClient:   cfg.HTTPClient,
			ObjectLock:   cfg.ObjectLock,
		})
		if err != nil {
			return nil, fmt.Errorf("repository %q: %w", shown, err)
		}
		return s, nil
	case "":
		return nil, fmt.Errorf("repository %q: relative paths are not accepted; use %s", shown, forms)
	default:
		return nil, fmt.Errorf("repository %q: unsupported scheme %q; use %s", shown, u.Scheme, forms)
	}
}

func openLocal(path, shown string) (storage.Store, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("repository %q: path must be absolute", shown)
	}
	// Nothing is created until the first write: read-only commands on a
	// mistyped path must not leave a directory behind.
	s, err := local.Open(filepath.Clean(path))
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", shown, err)
	}
	return s, nil
}

// redact drops anything between "://" and "@" so that user:password never
// reaches a message, even for URLs that do not parse.
func redact(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	rest := raw[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		return raw[:i+3] + "REDACTED@" + rest[at+1:]
	}
	return raw
}
